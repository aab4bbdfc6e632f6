/**
 * The mixed transfer of issue 13 (PostgreSQL ×2 + Redis + Kafka), the same writes three ways:
 *
 *   M0  by hand, no coordinator: per client a connection to each database, the Redis client
 *       and a transactional Kafka producer of the participants' libraries (pg, ioredis,
 *       kafkajs). In parallel: BEGIN; UPDATE; PREPARE TRANSACTION on both databases and the
 *       event sent inside a Kafka transaction; then in parallel COMMIT PREPARED on both, a
 *       Redis MULTI/INCRBY/EXEC and the Kafka commit. A failed phase 1 rolls back what
 *       prepared and aborts the Kafka transaction.
 *   M   through Verdict, 4 branches: begin, enlist pg-a debit (expectRows 1), pg-b credit
 *       (expectRows 1), Redis INCRBY, one Kafka event; commit
 *   M1  M in one request (the SDK's transact)
 *
 * Equal writes on both sides: the same two rows, one INCRBY of the receiving account's
 * counter by the amount, one event of the same shape and size. Each counts what its
 * confirmed transfers did, so the end state can be checked exactly.
 */
import type { Redis } from "ioredis";
import type { Kafka, Producer } from "kafkajs";
import {
  kafkaMessages,
  message,
  pgStatements,
  redis,
  redisOps,
  sql,
  type VerdictClient,
} from "../client/index.js";
import { directGidPrefix, randomAccount, randomAmount } from "./accounts.js";
import type { MixedScenario } from "./mixed-scenarios.js";
import {
  closeConnections,
  commitPrepared,
  connection,
  creditSql,
  debitSql,
  openTwoPhaseSessions,
  prepareBranch,
  rollBackQuietly,
  throughVerdict,
  transactionTimeoutMs,
  type Databases,
} from "./scenarios.js";

export interface MixedTransferTarget {
  readonly db: Databases;
  /** Prefix of the Redis counters, `<prefix><account id>`. */
  readonly counterPrefix: string;
  readonly topic: string;
  /** Verdict's names of the Redis and Kafka participants (PostgreSQL's are pg-a and pg-b). */
  readonly names: { readonly redis: string; readonly kafka: string };
}

interface Transfer {
  readonly from: number;
  readonly to: number;
  readonly amount: number;
}

function randomTransfer(db: Databases): Transfer {
  return {
    from: randomAccount(db.accounts),
    to: randomAccount(db.accounts),
    amount: randomAmount(),
  };
}

/** The event both sides write: the same key and value for the same transfer. */
function eventOf(t: Transfer): { key: string; value: string } {
  return { key: String(t.to), value: JSON.stringify(t) };
}

/** Counts of confirmed transfers; a scenario is built around one. */
function counted(
  id: string,
  title: string,
  transfer: (t: Transfer, client: number) => Promise<void>,
  target: MixedTransferTarget,
  close: () => Promise<void>,
): MixedScenario {
  let moved = 0;
  let events = 0;
  return {
    id,
    title,
    async run(client) {
      const t = randomTransfer(target.db);
      await transfer(t, client);
      moved += t.amount;
      events += 1;
    },
    movedAtoB: () => moved,
    debited: () => moved,
    credited: () => moved,
    events: () => events,
    close,
  };
}

function branchesOf(target: MixedTransferTarget, t: Transfer) {
  const event = eventOf(t);
  return [
    pgStatements("pg-a", [sql(debitSql, [t.amount, t.from], { expectRows: 1 })]),
    pgStatements("pg-b", [sql(creditSql, [t.amount, t.to], { expectRows: 1 })]),
    redisOps(target.names.redis, [redis.incrby(`${target.counterPrefix}${t.to}`, t.amount)]),
    kafkaMessages(target.names.kafka, [message(target.topic, event.value, { key: event.key })]),
  ];
}

export function verdictMixed(verdict: VerdictClient, target: MixedTransferTarget): MixedScenario {
  return counted(
    "M",
    "Verdict, 4 branches (pg-a, pg-b, Redis, Kafka), step by step",
    (t) => throughVerdict(verdict, branchesOf(target, t)),
    target,
    () => Promise.resolve(),
  );
}

export function verdictMixedOneRequest(
  verdict: VerdictClient,
  target: MixedTransferTarget,
): MixedScenario {
  return counted(
    "M1",
    "Verdict, the 4 branches in one request (transact)",
    async (t) => {
      await verdict.transact(branchesOf(target, t), { timeoutMs: transactionTimeoutMs });
    },
    target,
    () => Promise.resolve(),
  );
}

/** M0: the same writes by hand (see the file's comment). */
export async function directMixed(
  target: MixedTransferTarget,
  clients: number,
  deps: { readonly redis: Redis; readonly kafka: Kafka; readonly runId: string },
): Promise<MixedScenario> {
  const sessions = await openTwoPhaseSessions(target.db, clients);
  const producers: Producer[] = [];
  const close = async () => {
    await closeConnections(sessions.flat());
    await Promise.all(producers.map((p) => p.disconnect().catch(() => undefined)));
  };
  try {
    for (let i = 0; i < clients; i++) {
      const producer = deps.kafka.producer({
        transactionalId: `verdict-bench-direct-${deps.runId}-${i}`,
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
      });
      producers.push(producer);
      await producer.connect();
    }
  } catch (err) {
    await close();
    throw err;
  }
  let seq = 0;
  const transfer = async (t: Transfer, client: number) => {
    const producer = producers[client];
    if (producer === undefined) throw new Error(`assertion: client ${client} has no producer`);
    const a = connection(sessions, client, 0);
    const b = connection(sessions, client, 1);
    const gid = `${directGidPrefix}${deps.runId}:m${client}:${seq++}`;
    const kafkaTx = await producer.transaction();
    const [onA, onB, onK] = await Promise.allSettled([
      prepareBranch(a, `${gid}:a`, debitSql, [t.amount, t.from]),
      prepareBranch(b, `${gid}:b`, creditSql, [t.amount, t.to]),
      kafkaTx.send({ topic: target.topic, messages: [eventOf(t)] }),
    ]);
    if (onA.status === "rejected" || onB.status === "rejected" || onK.status === "rejected") {
      await Promise.all([
        onA.status === "fulfilled" ? rollBackQuietly(a, onA.value) : undefined,
        onB.status === "fulfilled" ? rollBackQuietly(b, onB.value) : undefined,
        kafkaTx.abort().catch(() => undefined),
      ]);
      const failed = [onA, onB, onK].find((r) => r.status === "rejected");
      throw failed?.reason;
    }
    await Promise.all([
      commitPrepared(a, `${gid}:a`),
      commitPrepared(b, `${gid}:b`),
      incrementInMulti(deps.redis, `${target.counterPrefix}${t.to}`, t.amount),
      kafkaTx.commit(),
    ]);
  };
  return counted(
    "M0",
    "by hand: PREPARE ×2, MULTI/EXEC, a Kafka transaction",
    transfer,
    target,
    close,
  );
}

/** MULTI; INCRBY; EXEC — throws if the transaction or its command failed. */
async function incrementInMulti(client: Redis, key: string, amount: number): Promise<void> {
  const replies = await client.multi().incrby(key, amount).exec();
  const error = replies === null ? new Error("EXEC aborted") : replies[0]?.[0];
  if (error) throw error;
}
