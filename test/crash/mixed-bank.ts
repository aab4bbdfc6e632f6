/**
 * The mixed crash tests' workload and their reading of the truth, across PostgreSQL, Redis
 * and Kafka.
 *
 * Workload: a `mixed` transfer has three branches. pg-a debits an account and writes its leg
 * `(transfer id, account, -amount)`; redis-main credits the counter of the transfer's slot
 * with INCRBY and adds the transfer id to the slot's set; kafka-events produces one event
 * keyed by the transfer id. A `redis-one-phase` transfer has only a Redis branch (on keys of
 * its own), so the coordinator commits it in one phase. Doomed transfers vote no: in
 * PostgreSQL (a missing account with `expectRows: 1`) or in Redis (an `exists` precondition
 * on a key that never exists). Branches prepare in parallel (the default `prepareOrder`), so
 * a Redis no-vote rolls back a PostgreSQL branch prepared or still preparing.
 *
 * Slots keep concurrent transfers off each other's Redis keys: a branch that finds a key
 * locked by another votes no at once, which would abort most of a round on one shared key.
 *
 * Truth: read directly from PostgreSQL, Redis (including a SCAN of Verdict's namespace, in
 * this test only) and Kafka (a group-less read_committed reader), then compared with what
 * each client was told and with the coordinator's final state of each transaction.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import kafkajs from "kafkajs";
import type { Admin, Kafka } from "kafkajs";
import {
  kafkaMessages,
  message,
  pgStatements,
  redis,
  redisOps,
  sql,
  type EnlistRequest,
} from "../../client/index.js";
import { CommittedReader } from "../../participants/kafka/reader.js";
import { services } from "../support/services.js";
import { createBank, preparedGids, type Bank, type FinalState } from "./bank.js";
import { countTold, type Told, type TransferOutcome } from "./transfer.js";

const { Kafka: KafkaClient, logLevel } = kafkajs;

export const participantNames = {
  pg: "pg-a",
  redis: "redis-main",
  kafka: "kafka-events",
} as const;

/** An account that does not exist: the debit affects 0 rows and pg-a votes no. */
const missingAccount = 999_999;
const topicPartitions = 3;
/** Reads of one partition waiting for open Kafka transactions to end (~20 ms apart). */
const kafkaSettleReadsMax = 500;
/** SCAN calls over one namespace or prefix; far above what a test writes. */
const scanCallsMax = 10_000;
const scanCount = 500;

export type MixedKind = "mixed" | "redis-one-phase";
/** Where a doomed transfer votes no. */
export type Doom = "none" | "pg" | "redis";

export interface MixedSpec {
  readonly id: string;
  readonly kind: MixedKind;
  /** The pg-a account a `mixed` transfer debits. */
  readonly from: number;
  /** Redis keys of the transfer's slot; concurrent transfers use distinct slots. */
  readonly slot: number;
  readonly amount: number;
  readonly doom: Doom;
}

export type MixedOutcome = TransferOutcome<MixedSpec>;

export interface MixedWorld {
  readonly bank: Bank;
  /** Verdict's Redis namespace for this cluster (a fresh one per world). */
  readonly namespace: string;
  /** Prefix of every user key the transfers write. */
  readonly keyPrefix: string;
  /** The event topic, created for this world. */
  readonly topic: string;
  readonly markerTopic: string;
  /** The Redis and Kafka participants, for `ProcessClusterOptions.extraParticipants`. */
  readonly participants: readonly Record<string, unknown>[];
  readonly redisDirect: Redis;
  readonly reader: CommittedReader;
  /** Rolls back what the cluster left prepared, drops the tables, topics and keys. */
  close(clusterId: string | undefined): Promise<void>;
}

export async function createMixedWorld(accounts: number): Promise<MixedWorld> {
  const run = randomBytes(5).toString("hex");
  const namespace = `vmix-${run}`;
  const keyPrefix = `mix-${run}:`;
  const topic = `verdict-mixed-events-${run}`;
  const markerTopic = `verdict-mixed-markers-${run}`;
  const bank = await createBank(accounts);
  const redisClient = new Redis(services.redisUrl, {
    commandTimeout: 5_000,
    maxRetriesPerRequest: 1,
  });
  const kafka: Kafka = new KafkaClient({
    clientId: `verdict-mixed-${run}`,
    brokers: [...services.kafkaBrokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
  const admin: Admin = kafka.admin();
  let reader: CommittedReader | undefined;
  try {
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: topicPartitions, replicationFactor: 1 }],
    });
    reader = await CommittedReader.open(kafka, { owner: "mixed-test-reader" });
  } catch (err) {
    await admin.disconnect().catch(() => undefined);
    redisClient.disconnect();
    await bank.drop(undefined);
    throw err;
  }
  const participants = [
    { name: participantNames.redis, kind: "redis", url: services.redisUrl, namespace },
    {
      name: participantNames.kafka,
      kind: "kafka",
      brokers: [...services.kafkaBrokers],
      clientId: `verdict-mixed-${run}`,
      markerTopic,
      markerPartitions: 3,
      transactionalIdPrefix: `verdict-mixed-${run}`,
      poolSize: 8,
      attemptTimeoutMs: 10_000,
    },
  ];
  const openReader = reader;
  return {
    bank,
    namespace,
    keyPrefix,
    topic,
    markerTopic,
    participants,
    redisDirect: redisClient,
    reader: openReader,
    async close(clusterId) {
      try {
        await bank.drop(clusterId);
      } finally {
        await openReader.close().catch(() => undefined);
        await admin
          .deleteTopics({ topics: [topic, markerTopic], timeout: 10_000 })
          .catch(() => undefined);
        await admin.disconnect().catch(() => undefined);
        for (const pattern of [`${namespace}:*`, `${keyPrefix}*`]) {
          const keys = await scanKeys(redisClient, pattern);
          if (keys.length > 0) await redisClient.del(...keys);
        }
        redisClient.disconnect();
      }
    },
  };
}

/** Every key matching `pattern` (SCAN, bounded): for tests only, Verdict itself never scans. */
async function scanKeys(client: Redis, pattern: string): Promise<string[]> {
  const keys = new Set<string>();
  let cursor = "0";
  for (let calls = 0; calls < scanCallsMax; calls++) {
    const [next, batch] = await client.scan(cursor, "MATCH", pattern, "COUNT", scanCount);
    for (const k of batch) keys.add(k);
    if (next === "0") return [...keys];
    cursor = next;
  }
  throw new Error(`SCAN ${pattern} did not finish in ${scanCallsMax} calls`);
}

/** The user keys the transfers write, all under the world's prefix. */
export const userKeys = (w: MixedWorld) => ({
  credit: (kind: MixedKind, slot: number) => `${w.keyPrefix}${kind}:credit:${slot}`,
  ids: (kind: MixedKind, slot: number) => `${w.keyPrefix}${kind}:ids:${slot}`,
  never: (id: string) => `${w.keyPrefix}never:${id}`,
});

/** The branches of one transfer, in the shapes the SDK sends (for `runTransfer`). */
export function mixedBranches(w: MixedWorld, s: MixedSpec): EnlistRequest[] {
  const k = userKeys(w);
  const credit = redisOps(
    participantNames.redis,
    [redis.incrby(k.credit(s.kind, s.slot), s.amount), redis.sadd(k.ids(s.kind, s.slot), s.id)],
    s.doom === "redis" ? [redis.exists(k.never(s.id))] : [],
  );
  if (s.kind === "redis-one-phase") return [credit];
  const one = { expectRows: 1 };
  const debited = s.doom === "pg" ? missingAccount : s.from;
  const event = JSON.stringify({ id: s.id, amount: s.amount });
  return [
    pgStatements(participantNames.pg, [
      sql(
        `update ${w.bank.acct} set balance = balance - $1 where id = $2`,
        [s.amount, debited],
        one,
      ),
      sql(
        `insert into ${w.bank.legs} (id, acct, delta) values ($1, $2, $3)`,
        [s.id, s.from, -s.amount],
        one,
      ),
    ]),
    credit,
    kafkaMessages(participantNames.kafka, [message(w.topic, event, { key: s.id })]),
  ];
}

/** One transfer with its own slot; `pick` chooses the account and amount. */
export function makeMixedTransfer(
  id: string,
  kind: MixedKind,
  slot: number,
  doom: Doom,
  accounts: number,
  pick: (maxInclusive: number) => number,
): MixedSpec {
  if (kind === "redis-one-phase" && doom === "pg") {
    throw new Error("assertion: a one-phase Redis transfer cannot be doomed in PostgreSQL");
  }
  return { id, kind, from: pick(accounts), slot, amount: pick(100), doom };
}

/** Verdict's keys of the namespace that must be gone once everything settled. */
export async function redisLeftovers(w: MixedWorld): Promise<string[]> {
  const left: string[] = [];
  for (const key of await scanKeys(w.redisDirect, `${w.namespace}:*`)) {
    const rest = key.slice(w.namespace.length + 1);
    if (rest.startsWith("lock:") || rest.startsWith("branch:")) left.push(key);
  }
  const staged = await w.redisDirect.smembers(`${w.namespace}:prepared`);
  left.push(...staged.map((b) => `${w.namespace}:prepared member ${b}`));
  return left.sort();
}

export interface MixedSummary {
  readonly told: Readonly<Record<Told, number>>;
  readonly committed: number;
  readonly notCommitted: number;
  readonly events: number;
  /** Records of aborted Kafka transactions that the broker returned and the reader dropped. */
  readonly abortedRecords: number;
}

interface RedisTruth {
  /** Transfer id → the slots whose set holds it. */
  readonly members: Map<string, number[]>;
}

/**
 * Reads the counters and sets of `kind` for the slots in use. Each slot's counter must equal
 * the amounts of the transfers in its set (one INCRBY and one SADD, applied together).
 */
async function readRedis(
  w: MixedWorld,
  kind: MixedKind,
  slots: ReadonlySet<number>,
  amounts: ReadonlyMap<string, number>,
  violations: string[],
): Promise<RedisTruth & { readonly total: number }> {
  const k = userKeys(w);
  const members = new Map<string, number[]>();
  let total = 0;
  for (const slot of slots) {
    const counter = Number((await w.redisDirect.get(k.credit(kind, slot))) ?? 0);
    const ids = await w.redisDirect.smembers(k.ids(kind, slot));
    let want = 0;
    for (const id of ids) {
      members.set(id, [...(members.get(id) ?? []), slot]);
      const amount = amounts.get(id);
      if (amount === undefined) violations.push(`redis ${kind} slot ${slot}: unknown id ${id}`);
      want += amount ?? 0;
    }
    if (counter !== want) {
      violations.push(`redis ${kind} slot ${slot}: counter ${counter}, its set says ${want}`);
    }
    total += counter;
  }
  return { members, total };
}

/** Every committed event of the topic, by transfer id; and how many aborted records were dropped. */
export async function readKafka(
  w: MixedWorld,
  amounts: ReadonlyMap<string, number>,
  violations: string[],
): Promise<{ events: Map<string, number>; total: number; amount: number; aborted: number }> {
  const events = new Map<string, number>();
  let total = 0;
  let amount = 0;
  let aborted = 0;
  for (let partition = 0; partition < topicPartitions; partition++) {
    const read = await w.reader.readSettled(w.topic, partition, kafkaSettleReadsMax);
    aborted += read.rawValues.length - read.records.length;
    for (const r of read.records) {
      total += 1;
      const event = JSON.parse(r.value ?? "null") as { id?: unknown; amount?: unknown } | null;
      const id = typeof event?.id === "string" ? event.id : undefined;
      if (id === undefined || r.key !== id) {
        violations.push(`kafka ${partition}@${r.offset}: key ${r.key}, value ${r.value}`);
        continue;
      }
      events.set(id, (events.get(id) ?? 0) + 1);
      amount += Number(event?.amount);
      if (amounts.get(id) !== event?.amount) {
        violations.push(`kafka event of ${id}: amount ${String(event?.amount)}, unknown or wrong`);
      }
    }
  }
  return { events, total, amount, aborted };
}

/**
 * Checks the three stores against the outcomes and final states. Returns the violations
 * (empty when all hold) and a summary:
 * - a mixed transfer is all-or-nothing: its pg leg ⇔ its Redis set member ⇔ exactly one
 *   committed Kafka event; a one-phase transfer is in its Redis set or nowhere;
 * - sums agree: pg-a balances match their legs, and pg debits = Redis credits = event
 *   amounts (and legs = members = events in number);
 * - a transfer told committed/committing is committed; one told aborted or never sent, or a
 *   doomed one, left nothing; the coordinator's final state agrees (G7);
 * - the read_committed reader sees each committed event once and no event of anything else;
 * - nothing of the cluster is left prepared in PostgreSQL, nor staged or locked in Redis.
 */
export async function checkMixedTruth(
  w: MixedWorld,
  outcomes: readonly MixedOutcome[],
  states: ReadonlyMap<string, FinalState>,
  clusterId: string,
): Promise<{ violations: string[]; summary: MixedSummary }> {
  const violations: string[] = [];
  const amounts = new Map(outcomes.map((o) => [o.spec.id, o.spec.amount]));
  const pool = w.bank.pools["pg-a"];

  const { rows: legRows } = await pool.query<{ id: string; n: string; delta: string }>(
    `select id, count(*) as n, sum(delta) as delta from ${w.bank.legs} group by id`,
  );
  const legs = new Map(legRows.map((r) => [r.id, { n: Number(r.n), delta: Number(r.delta) }]));
  // Each account's balance plus what its legs took away is the same for every account.
  const { rows: drift } = await pool.query<{ id: number; before: string }>(
    `select a.id, a.balance - coalesce(sum(l.delta), 0) as before
     from ${w.bank.acct} a left join ${w.bank.legs} l on l.acct = a.id group by a.id, a.balance`,
  );
  const befores = new Set(drift.map((d) => d.before));
  if (befores.size !== 1) {
    violations.push(`pg-a balances do not match their legs: ${[...befores].join(", ")}`);
  }
  const pgDebits = -[...legs.values()].reduce((sum, l) => sum + l.delta, 0);

  const slotsOf = (kind: MixedKind) =>
    new Set(outcomes.filter((o) => o.spec.kind === kind).map((o) => o.spec.slot));
  const mixed = await readRedis(w, "mixed", slotsOf("mixed"), amounts, violations);
  const onePhase = await readRedis(
    w,
    "redis-one-phase",
    slotsOf("redis-one-phase"),
    amounts,
    violations,
  );
  const kafka = await readKafka(w, amounts, violations);

  if (pgDebits !== mixed.total || pgDebits !== kafka.amount) {
    violations.push(
      `sums disagree: pg debits ${pgDebits}, redis credits ${mixed.total}, ` +
        `kafka amounts ${kafka.amount}`,
    );
  }
  if (legs.size !== mixed.members.size || legs.size !== kafka.total) {
    violations.push(
      `counts disagree: pg legs ${legs.size}, redis members ${mixed.members.size}, ` +
        `kafka events ${kafka.total}`,
    );
  }
  const known = new Set(amounts.keys());
  for (const [store, ids] of [
    ["pg-a", legs.keys()],
    ["kafka", kafka.events.keys()],
  ] as const) {
    for (const id of ids) if (!known.has(id)) violations.push(`${store} has unknown ${id}`);
  }

  let committed = 0;
  for (const o of outcomes) {
    const s = o.spec;
    const what = `${s.kind} transfer ${s.id} (xid ${o.xid ?? "-"}, told ${o.told}, doom ${s.doom})`;
    const leg = legs.get(s.id);
    const events = kafka.events.get(s.id) ?? 0;
    const inMixed = mixed.members.get(s.id);
    const inOnePhase = onePhase.members.get(s.id);
    const own = s.kind === "mixed" ? inMixed : inOnePhase;
    const other = s.kind === "mixed" ? inOnePhase : inMixed;
    const isIn = s.kind === "mixed" ? leg !== undefined || own !== undefined || events > 0 : !!own;
    if (other !== undefined || (own !== undefined && (own.length !== 1 || own[0] !== s.slot))) {
      violations.push(`${what}: in the wrong redis sets (${JSON.stringify({ own, other })})`);
    }
    if (s.kind === "mixed" && isIn) {
      const legOk = leg?.n === 1 && leg.delta === -s.amount;
      if (!legOk || own === undefined || events !== 1) {
        violations.push(
          `${what}: not all-or-nothing: pg leg ${JSON.stringify(leg)}, ` +
            `redis ${own === undefined ? "absent" : "present"}, kafka events ${events}`,
        );
      }
    }
    if (s.kind === "redis-one-phase" && (leg !== undefined || events > 0)) {
      violations.push(`${what}: a Redis-only transfer has a pg leg or a kafka event`);
    }
    if (isIn) committed += 1;
    if ((o.told === "committed" || o.told === "committing") && !isIn) {
      violations.push(`${what}: the client was told it committed, but it is nowhere`);
    }
    if ((o.told === "aborted" || o.told === "not-sent") && isIn) {
      violations.push(`${what}: it left effects although it ${o.told}`);
    }
    if (s.doom !== "none" && isIn) violations.push(`${what}: a doomed transfer committed`);
    if (o.xid !== undefined) {
      const state = states.get(o.xid);
      if (state === undefined) violations.push(`${what}: no final state in the coordinator`);
      else if ((state === "committed") !== isIn) {
        violations.push(`${what}: coordinator says ${state}, stores say ${isIn ? "in" : "absent"}`);
      }
    } else if (isIn) {
      violations.push(`${what}: committed, but its begin never answered`);
    }
  }
  for (const g of await preparedGids(w.bank.pools, clusterId)) {
    violations.push(`prepared transaction left behind: ${g}`);
  }
  for (const k of await redisLeftovers(w)) violations.push(`redis left behind: ${k}`);
  return {
    violations,
    summary: {
      told: countTold(outcomes),
      committed,
      notCommitted: outcomes.length - committed,
      events: kafka.total,
      abortedRecords: kafka.aborted,
    },
  };
}
