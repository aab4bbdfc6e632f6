/**
 * The live demo's data and its audit, read from every store directly. A transfer moves money
 * from an account in verdict_a to one in verdict_b, records itself in both databases' ledger
 * (`live_transfers`), in a Redis set and as one Kafka event, all in one Verdict transaction.
 * The audit then holds when: every transfer's four effects are all there or all absent; the
 * money total is what it was; every applied transfer has exactly one Kafka event; what the
 * clients were told committed is applied and what they were told aborted is not; nothing is
 * left prepared in PostgreSQL or staged in Redis.
 *
 * Its own things only, so it runs beside the other demos and the tests: accounts 5001–5020
 * of `accounts`, rows of this run in `live_transfers`, the Redis set `live-demo:<run>` and
 * the Kafka topic `live-demo-<run>` (earlier runs' topics are deleted at the start).
 */
import type { Kafka } from "kafkajs";
import type pg from "pg";
import { Redis } from "ioredis";
import { CommittedReader } from "../../../participants/kafka/reader.js";
import {
  databases,
  ensureAccounts,
  ensureTopic,
  kafkaClient,
  pgPool,
  preparedGids,
  services,
  type Database,
} from "../services.js";

export const liveAccounts = Array.from({ length: 20 }, (_, i) => 5001 + i);
const initialBalance = 100_000;
const eventPartitions = 3;
const topicPrefix = "live-demo-";
/** Reads of a partition the final audit waits for open Kafka transactions to close. */
const settleReadsMax = 250;

export interface LiveWorld {
  readonly runId: string;
  readonly topic: string;
  readonly redisSet: string;
  readonly pools: Record<Database, pg.Pool>;
  readonly redis: Redis;
  readonly kafka: Kafka;
  readonly reader: CommittedReader;
  /** Per partition, where the live event count has read up to. */
  readonly eventOffsets: bigint[];
  eventsCounted: number;
}

export async function openWorld(runId: string): Promise<LiveWorld> {
  const kafka = kafkaClient("live-demo");
  return {
    runId,
    topic: `${topicPrefix}${runId}`,
    redisSet: `live-demo:${runId}`,
    pools: { verdict_a: pgPool("verdict_a"), verdict_b: pgPool("verdict_b") },
    redis: new Redis(services.redisUrl, { maxRetriesPerRequest: 2, connectTimeout: 5_000 }),
    kafka,
    reader: await CommittedReader.open(kafka, { owner: "live-demo" }),
    eventOffsets: Array.from({ length: eventPartitions }, () => 0n),
    eventsCounted: 0,
  };
}

export async function closeWorld(w: LiveWorld): Promise<void> {
  await w.reader.close();
  w.redis.disconnect();
  await Promise.all(databases.map((db) => w.pools[db].end()));
}

/** Fresh balances and ledger table, this run's topic; earlier runs' topics deleted. */
export async function prepareWorld(w: LiveWorld): Promise<void> {
  for (const db of databases) {
    await ensureAccounts(w.pools[db], liveAccounts, initialBalance, true);
    await w.pools[db].query(
      `create table if not exists live_transfers (
         run text not null, transfer int not null, amount bigint not null,
         primary key (run, transfer))`,
    );
  }
  const admin = w.kafka.admin();
  await admin.connect();
  try {
    const stale = (await admin.listTopics()).filter((t) => t.startsWith(topicPrefix));
    if (stale.length > 0) await admin.deleteTopics({ topics: stale, timeout: 10_000 });
    await ensureTopic(admin, w.topic, eventPartitions);
  } finally {
    await admin.disconnect();
  }
}

export const expectedMoneyTotal = 2 * liveAccounts.length * initialBalance;

/** The money in both databases' demo accounts (committed rows only). */
export async function moneyTotal(w: LiveWorld): Promise<number> {
  let total = 0;
  for (const db of databases) {
    const { rows } = await w.pools[db].query<{ total: string | null }>(
      "select sum(balance)::text as total from accounts where id = any($1::bigint[])",
      [liveAccounts],
    );
    total += Number(rows[0]?.total ?? 0);
  }
  return total;
}

/** Committed events of this run so far, read on from where the last count stopped. */
export async function countNewEvents(w: LiveWorld): Promise<number> {
  for (let p = 0; p < eventPartitions; p++) {
    const until = await w.reader.lastStableOffset(w.topic, p);
    const from = w.eventOffsets[p] ?? 0n;
    if (until <= from) continue;
    await w.reader.scan(w.topic, p, { fromOffset: from, untilOffset: until }, () => {
      w.eventsCounted++;
      return false;
    });
    w.eventOffsets[p] = until;
  }
  return w.eventsCounted;
}

export type Told = "committed" | "aborted" | "unknown";

export interface AuditCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface Audit {
  readonly transfers: number;
  readonly applied: number;
  readonly moneyTotal: number;
  readonly kafkaEvents: number;
  readonly checks: readonly AuditCheck[];
  readonly ok: boolean;
}

async function ledger(pool: pg.Pool, runId: string): Promise<Set<number>> {
  const { rows } = await pool.query<{ transfer: number }>(
    "select transfer from live_transfers where run = $1",
    [runId],
  );
  return new Set(rows.map((r) => r.transfer));
}

/** Events per transfer, once no Kafka transaction is open (a decided one has its marker). */
async function eventsPerTransfer(w: LiveWorld): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  for (let p = 0; p < eventPartitions; p++) {
    const read = await w.reader.readSettled(w.topic, p, settleReadsMax);
    for (const r of read.records) {
      const n = Number(r.key);
      counts.set(n, (counts.get(n) ?? 0) + 1);
    }
  }
  return counts;
}

function check(name: string, bad: readonly (string | number)[], what: string): AuditCheck {
  const shown = bad.slice(0, 5).join(", ") + (bad.length > 5 ? ", …" : "");
  return { name, ok: bad.length === 0, detail: bad.length === 0 ? "" : `${what}: ${shown}` };
}

/**
 * Reads every store and checks the invariants. `told`: what each transfer's client was told;
 * `clusterId`: the prefix of this cluster's PostgreSQL gids; `redisNamespace`: where its
 * participant stages branches.
 */
export async function audit(
  w: LiveWorld,
  told: ReadonlyMap<number, Told>,
  clusterId: string,
  redisNamespace: string,
): Promise<Audit> {
  const a = await ledger(w.pools.verdict_a, w.runId);
  const b = await ledger(w.pools.verdict_b, w.runId);
  const r = new Set((await w.redis.smembers(w.redisSet)).map(Number));
  const k = await eventsPerTransfer(w);
  const all = [...told.keys()];
  const partial = all.filter((n) => new Set([a.has(n), b.has(n), r.has(n), k.has(n)]).size > 1);
  const applied = new Set(all.filter((n) => a.has(n) && b.has(n) && r.has(n) && k.has(n)));
  const anywhere = (n: number) => a.has(n) || b.has(n) || r.has(n) || k.has(n);
  const prepared = [
    ...(await preparedGids(w.pools.verdict_a, clusterId)),
    ...(await preparedGids(w.pools.verdict_b, clusterId)),
  ];
  const staged = await w.redis.smembers(`${redisNamespace}:prepared`);
  const money = await moneyTotal(w);
  const kafkaEvents = [...k.values()].reduce((sum, c) => sum + c, 0);
  const checks = [
    check("all-or-nothing", partial, "transfers applied in some stores only"),
    check(
      "money conserved",
      money === expectedMoneyTotal ? [] : [money],
      `total ${expectedMoneyTotal} expected, found`,
    ),
    check(
      "Kafka exactly once",
      [...k].filter(([n, c]) => c !== 1 || !told.has(n)).map(([n, c]) => `${n}×${c}`),
      "events not exactly once per transfer",
    ),
    check(
      "committed are applied",
      all.filter((n) => told.get(n) === "committed" && !applied.has(n)),
      "told committed, not applied everywhere",
    ),
    check(
      "aborted are not applied",
      all.filter((n) => told.get(n) === "aborted" && anywhere(n)),
      "told aborted, applied",
    ),
    check("nothing prepared or staged", [...prepared, ...staged], "left behind"),
  ];
  return {
    transfers: all.length,
    applied: applied.size,
    moneyTotal: money,
    kafkaEvents,
    checks,
    ok: checks.every((c) => c.ok),
  };
}
