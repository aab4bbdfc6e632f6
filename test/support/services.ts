/**
 * Where the real services of deploy/local listen. The test command exports these
 * variables from `.local/services.env`; the defaults match deploy/local's defaults.
 */
const pgPassword = process.env.VERDICT_PG_PASSWORD ?? "verdict-local-only";
const pgPort = process.env.VERDICT_PG_PORT ?? "55432";
/** deploy/local's statement roles (docs/security.md): the default one and a second principal's. */
const pgStatementUser = process.env.VERDICT_PG_STATEMENT_USER ?? "verdict_stmt";
const pgStatementUser2 = process.env.VERDICT_PG_STATEMENT_USER_2 ?? "verdict_stmt_2";

/** `url` logged in as `user` (deploy/local gives every role the same password). */
function asUser(url: string, user: string): string {
  const u = new URL(url);
  u.username = user;
  u.password = pgPassword;
  return u.toString();
}

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
  pgStatementUser,
  pgStatementUser2,
  /** A participant's `statementRoles` with deploy/local's default statement role. */
  pgStatementRoles: { default: { user: pgStatementUser, password: pgPassword } },
  /** A database URL as another role, e.g. as the statement role that prepared a branch. */
  pgUrlAs: asUser,
  redisUrl:
    process.env.VERDICT_REDIS_URL ??
    `redis://127.0.0.1:${process.env.VERDICT_REDIS_PORT ?? "56379"}`,
  kafkaBrokers: (
    process.env.VERDICT_KAFKA_BROKERS ?? `127.0.0.1:${process.env.VERDICT_KAFKA_PORT ?? "59092"}`
  ).split(","),
} as const;
