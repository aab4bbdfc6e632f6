/**
 * Where the real services of deploy/local listen. The test command exports these
 * variables from `.local/services.env`; the defaults match deploy/local's defaults.
 */
const pgPassword = process.env.VERDICT_PG_PASSWORD ?? "verdict-local-only";
const pgPort = process.env.VERDICT_PG_PORT ?? "55432";

export const services = {
  pgUrlA:
    process.env.VERDICT_PG_URL_A ??
    `postgres://verdict:${pgPassword}@127.0.0.1:${pgPort}/verdict_a`,
  pgUrlB:
    process.env.VERDICT_PG_URL_B ??
    `postgres://verdict:${pgPassword}@127.0.0.1:${pgPort}/verdict_b`,
  pgAdminUrl:
    process.env.VERDICT_PG_ADMIN_URL ??
    `postgres://verdict:${pgPassword}@127.0.0.1:${pgPort}/postgres`,
  redisUrl:
    process.env.VERDICT_REDIS_URL ??
    `redis://127.0.0.1:${process.env.VERDICT_REDIS_PORT ?? "56379"}`,
  kafkaBrokers: (
    process.env.VERDICT_KAFKA_BROKERS ?? `127.0.0.1:${process.env.VERDICT_KAFKA_PORT ?? "59092"}`
  ).split(","),
} as const;
