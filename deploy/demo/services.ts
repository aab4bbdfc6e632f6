/**
 * What the demos share: where deploy/local's services listen (the same environment variables
 * and defaults as deploy/local/local.sh), and the idempotent set-up of the demo's own
 * `accounts` table and Kafka topics. Loopback only; every call is bounded in time.
 */
import { randomBytes } from "node:crypto";
import kafkajs from "kafkajs";
import type { Admin, Kafka } from "kafkajs";
import pg from "pg";

const { Kafka: KafkaClient, logLevel } = kafkajs;

const env = (name: string, fallback: string): string => process.env[name] || fallback;

const pgPassword = env("VERDICT_PG_PASSWORD", "verdict-local-only");
const pgPort = env("VERDICT_PG_PORT", "55432");

export const databases = ["verdict_a", "verdict_b"] as const;
export type Database = (typeof databases)[number];

export const services = {
  pgUrl: (db: Database) => `postgres://verdict:${pgPassword}@127.0.0.1:${pgPort}/${db}`,
  redisUrl: `redis://127.0.0.1:${env("VERDICT_REDIS_PORT", "56379")}`,
  kafkaBrokers: [`127.0.0.1:${env("VERDICT_KAFKA_PORT", "59092")}`],
} as const;

/** Bounds of the demos' own connections: a stuck service fails the demo, never hangs it. */
const connectTimeoutMs = 5_000;
const statementTimeoutMs = 10_000;
/** A demo reset waits this long at most for a lock (e.g. a row held by a prepared transaction). */
const lockTimeoutMs = 5_000;

export function pgPool(db: Database): pg.Pool {
  return new pg.Pool({
    connectionString: services.pgUrl(db),
    max: 2,
    connectionTimeoutMillis: connectTimeoutMs,
    statement_timeout: statementTimeoutMs,
    lock_timeout: lockTimeoutMs,
  });
}

export function kafkaClient(purpose: string): Kafka {
  return new KafkaClient({
    clientId: `verdict-${purpose}-${randomBytes(3).toString("hex")}`,
    brokers: [...services.kafkaBrokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: connectTimeoutMs,
    requestTimeout: statementTimeoutMs,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
}

/** Serialises concurrent set-ups (two demos starting at once) on the DDL below. */
const setupLockKey = 0x64656d6f; // "demo"

/**
 * Creates `accounts` if absent and makes sure rows `ids` exist. `reset`: put them back to
 * `balance` (the crash demo's own rows); otherwise an existing row keeps its balance (the
 * demo's rows, which the reader may have moved money between).
 */
export async function ensureAccounts(
  pool: pg.Pool,
  ids: readonly number[],
  balance: number,
  reset: boolean,
): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("begin");
    await client.query("select pg_advisory_xact_lock($1)", [setupLockKey]);
    // The check makes an overdraft a no-vote (the statement fails at prepare).
    await client.query(
      `create table if not exists accounts (
         id bigint primary key,
         balance bigint not null check (balance >= 0))`,
    );
    await client.query(
      `insert into accounts (id, balance) select unnest($1::bigint[]), $2
       on conflict (id) do ${reset ? "update set balance = excluded.balance" : "nothing"}`,
      [ids, balance],
    );
    await client.query("commit");
  } catch (err) {
    await client.query("rollback").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** A cluster's prepared transactions in one database (exact prefix, as Verdict matches). */
export async function preparedGids(pool: pg.Pool, clusterId: string): Promise<string[]> {
  const { rows } = await pool.query<{ gid: string }>(
    `select gid from pg_prepared_xacts
     where database = current_database() and starts_with(gid, $1) order by gid`,
    [`${clusterId}:`],
  );
  return rows.map((r) => r.gid);
}

/** Creates `topic` with `partitions` partitions unless it exists (the broker does not auto-create). */
export async function ensureTopic(admin: Admin, topic: string, partitions: number): Promise<void> {
  const existing = await admin.listTopics();
  if (existing.includes(topic)) return;
  await admin.createTopics({
    waitForLeaders: true,
    timeout: statementTimeoutMs,
    topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
  });
}
