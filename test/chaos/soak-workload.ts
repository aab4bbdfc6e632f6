/**
 * The soak's workload: four-branch transfers over the mixed crash-test world (mixed-bank.ts:
 * both bank databases, a Redis namespace and key prefix, a fresh 3-partition event topic and
 * a marker topic of its own per run). Each transfer carries its id into every participant:
 * - pg-a debits an account and writes its leg `(id, account, -amount)`;
 * - pg-b credits an account and writes its leg `(id, account, +amount)`;
 * - redis-main adds the amount to its client's counter (INCRBY) and SETs `t:<id>` to it;
 * - kafka-events produces one event `{id, amount}` keyed by the id.
 * A doomed transfer votes no on purpose: in pg-b (a credit to a missing account with
 * `expectRows: 1`) or in Redis (an `exists` precondition on a key that never exists).
 */
import { randomInt } from "node:crypto";
import {
  kafkaMessages,
  message,
  pgStatements,
  redis,
  redisOps,
  sql,
  type EnlistRequest,
} from "../../client/index.js";
import type { SeededRandom } from "../unit/log/seeded-random.js";
import { participantNames, type MixedWorld } from "../crash/mixed-bank.js";
import type { TransferOutcome } from "../crash/transfer.js";

/** An account that does not exist: the credit affects 0 rows and pg-b votes no. */
const missingAccount = 999_999;
const amountMax = 100;

export type SoakDoom = "none" | "pg" | "redis";

export interface SoakSpec {
  readonly id: string;
  /** The client that ran it: its Redis counter (clients never share a counter key). */
  readonly client: number;
  readonly from: number;
  readonly to: number;
  readonly amount: number;
  readonly doom: SoakDoom;
}

export type SoakOutcome = TransferOutcome<SoakSpec>;

/** A fresh seed, for a run that was given none (`--seed`, VERDICT_SOAK_SEED replay one). */
export function freshSeed(): number {
  return randomInt(2 ** 31);
}

/** The user keys the transfers write, all under the world's key prefix. */
export const soakKeys = (w: MixedWorld) => ({
  counter: (client: number) => `${w.keyPrefix}soak:credit:${client}`,
  transfer: (id: string) => `${w.keyPrefix}soak:t:${id}`,
  never: (id: string) => `${w.keyPrefix}soak:never:${id}`,
});

/** A client's next transfer, from its own seeded random; `doomedPercent` of them vote no. */
export function nextSoakSpec(
  id: string,
  client: number,
  accounts: number,
  doomedPercent: number,
  random: SeededRandom,
): SoakSpec {
  let doom: SoakDoom = "none";
  if (random.int(1, 100) <= doomedPercent) doom = random.chance(0.5) ? "pg" : "redis";
  return {
    id,
    client,
    from: random.int(1, accounts),
    to: random.int(1, accounts),
    amount: random.int(1, amountMax),
    doom,
  };
}

/** The four branches of one transfer, in the shapes the SDK sends. */
export function soakBranches(w: MixedWorld, s: SoakSpec): EnlistRequest[] {
  const k = soakKeys(w);
  const one = { expectRows: 1 };
  const leg = `insert into ${w.bank.legs} (id, acct, delta) values ($1, $2, $3)`;
  const to = s.doom === "pg" ? missingAccount : s.to;
  return [
    pgStatements("pg-a", [
      sql(
        `update ${w.bank.acct} set balance = balance - $1 where id = $2`,
        [s.amount, s.from],
        one,
      ),
      sql(leg, [s.id, s.from, -s.amount], one),
    ]),
    pgStatements("pg-b", [
      sql(`update ${w.bank.acct} set balance = balance + $1 where id = $2`, [s.amount, to], one),
      sql(leg, [s.id, s.to, s.amount], one),
    ]),
    redisOps(
      participantNames.redis,
      [redis.incrby(k.counter(s.client), s.amount), redis.set(k.transfer(s.id), String(s.amount))],
      s.doom === "redis" ? [redis.exists(k.never(s.id))] : [],
    ),
    kafkaMessages(participantNames.kafka, [
      message(w.topic, JSON.stringify({ id: s.id, amount: s.amount }), { key: s.id }),
    ]),
  ];
}
