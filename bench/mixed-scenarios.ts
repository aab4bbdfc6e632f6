/**
 * The transfers of the three-participant bench, all through Verdict, one branch per
 * participant:
 *
 *   M   pg-a debit (expectRows 1) + Redis INCRBY of the receiving counter + a Kafka event
 *   P   the pg-a debit alone
 *   R   the Redis INCRBY alone
 *   K   the Kafka event alone
 *
 * P, R and K are each participant's cost on its own, so M can be compared with them (and
 * with their sum) in the same run. Each scenario counts what its confirmed transfers did,
 * so the end state can be checked exactly: money debited from pg-a, added to Redis counters,
 * events in the topic.
 */
import { kafkaMessages, message, pgStatements, redis, redisOps, sql } from "../client/index.js";
import type { VerdictClient } from "../client/index.js";
import { accountsTable, randomAccount, randomAmount } from "./accounts.js";
import { throughVerdict, type Scenario } from "./scenarios.js";

export interface MixedTarget {
  readonly verdict: VerdictClient;
  readonly accounts: number;
  /** Prefix of the Redis counters, `<prefix><account id>`. */
  readonly counterPrefix: string;
  readonly topic: string;
  readonly names: { readonly pg: string; readonly redis: string; readonly kafka: string };
}

/** What a scenario's confirmed transfers did, for the end-of-run checks. */
export interface MixedScenario extends Scenario {
  /** Amounts debited from pg-a. */
  debited(): number;
  /** Amounts added to Redis counters. */
  credited(): number;
  /** Events produced. */
  events(): number;
}

type Part = "pg" | "redis" | "kafka";

const debitSql = `update ${accountsTable} set balance = balance - $1 where id = $2`;

function mixed(id: string, title: string, parts: readonly Part[], t: MixedTarget): MixedScenario {
  let debited = 0;
  let credited = 0;
  let events = 0;
  return {
    id,
    title,
    async run() {
      const from = randomAccount(t.accounts);
      const to = randomAccount(t.accounts);
      const amount = randomAmount();
      const branches = parts.map((part) => {
        switch (part) {
          case "pg":
            return pgStatements(t.names.pg, [sql(debitSql, [amount, from], { expectRows: 1 })]);
          case "redis":
            return redisOps(t.names.redis, [redis.incrby(`${t.counterPrefix}${to}`, amount)]);
          case "kafka":
            return kafkaMessages(t.names.kafka, [
              message(t.topic, JSON.stringify({ from, to, amount }), { key: String(to) }),
            ]);
        }
      });
      await throughVerdict(t.verdict, branches);
      if (parts.includes("pg")) debited += amount;
      if (parts.includes("redis")) credited += amount;
      if (parts.includes("kafka")) events += 1;
    },
    movedAtoB: () => 0,
    debited: () => debited,
    credited: () => credited,
    events: () => events,
    close: () => Promise.resolve(),
  };
}

export function mixedScenarios(t: MixedTarget): MixedScenario[] {
  return [
    mixed("P", "pg-a debit alone", ["pg"], t),
    mixed("R", "Redis INCRBY alone", ["redis"], t),
    mixed("K", "Kafka event alone", ["kafka"], t),
    mixed("M", "pg-a debit + Redis INCRBY + Kafka event", ["pg", "redis", "kafka"], t),
  ];
}
