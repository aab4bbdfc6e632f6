/**
 * The soak's reading of the truth, straight from the servers (never through Verdict):
 * PostgreSQL legs and balances in both databases, the Redis counters and per-transfer keys,
 * every partition of the event topic read with read_committed (`CommittedReader`), and what
 * the participants may have left behind (prepared transactions, staged branches, locks).
 * The coordinator's final states (from the settle) are compared last, as a second opinion.
 */
import type { FinalState } from "../crash/bank.js";
import { preparedGids } from "../crash/bank.js";
import { readKafka, redisLeftovers, type MixedWorld } from "../crash/mixed-bank.js";
import { countTold, type Told } from "../crash/transfer.js";
import { soakKeys, type SoakOutcome } from "./soak-workload.js";

/** Keys per MGET. */
const mgetChunk = 500;

export interface SoakFound {
  readonly told: Readonly<Record<Told, number>>;
  /** Transfers with effects anywhere (all-or-nothing holds when there are no violations). */
  readonly committed: number;
  readonly absent: number;
  readonly kafkaEvents: number;
  /** Records of aborted Kafka transactions the broker returned and the reader dropped. */
  readonly kafkaAbortedRecords: number;
}

interface Leg {
  readonly n: number;
  readonly delta: number;
}

/** Legs by transfer id; violations if balances and legs disagree inside the database. */
async function readLegs(
  w: MixedWorld,
  db: "pg-a" | "pg-b",
  violations: string[],
): Promise<Map<string, Leg>> {
  const pool = w.bank.pools[db];
  const { rows } = await pool.query<{ id: string; n: string; delta: string }>(
    `select id, count(*) as n, sum(delta) as delta from ${w.bank.legs} group by id`,
  );
  // Every account started with the same balance: balance minus its legs is that, everywhere.
  const { rows: drift } = await pool.query<{ before: string }>(
    `select distinct a.balance - coalesce(sum(l.delta), 0) as before
     from ${w.bank.acct} a left join ${w.bank.legs} l on l.acct = a.id group by a.id, a.balance`,
  );
  if (drift.length !== 1) {
    violations.push(
      `${db}: balances do not match their legs (${drift.map((d) => d.before).join(", ")})`,
    );
  }
  return new Map(rows.map((r) => [r.id, { n: Number(r.n), delta: Number(r.delta) }]));
}

/** The value of each transfer's Redis key (undefined: absent). */
async function readTransferKeys(
  w: MixedWorld,
  ids: readonly string[],
): Promise<Map<string, string>> {
  const k = soakKeys(w);
  const values = new Map<string, string>();
  for (let i = 0; i < ids.length; i += mgetChunk) {
    const chunk = ids.slice(i, i + mgetChunk);
    const got = await w.redisDirect.mget(...chunk.map((id) => k.transfer(id)));
    got.forEach((v, j) => {
      if (v !== null) values.set(chunk[j]!, v);
    });
  }
  return values;
}

/**
 * Checks every participant against what each client was told. Returns the violations (empty
 * when all hold) and what was found:
 * - each transfer all-or-nothing: its pg-a leg, its pg-b leg, its Redis key (value = amount)
 *   and exactly one committed Kafka event, or none of them;
 * - told committed (or committing): present everywhere; told aborted, never sent, or doomed:
 *   absent everywhere;
 * - money conserved: balances match legs in each database, pg-a debits = pg-b credits =
 *   Redis counters = Kafka amounts, and each client's counter = the amounts of its keys;
 * - no event, leg or key of an unknown transfer; no prepared transaction of the cluster in
 *   PostgreSQL, nothing staged or locked in the Redis namespace;
 * - the coordinator's final state of each transfer agrees with the stores (once settled).
 */
export async function checkSoakTruth(
  w: MixedWorld,
  outcomes: readonly SoakOutcome[],
  /** Undefined when recovery did not settle (reported already): not compared then. */
  states: ReadonlyMap<string, FinalState> | undefined,
  clusterId: string,
): Promise<{ violations: string[]; found: SoakFound }> {
  const violations: string[] = [];
  const amounts = new Map(outcomes.map((o) => [o.spec.id, o.spec.amount]));
  const legsA = await readLegs(w, "pg-a", violations);
  const legsB = await readLegs(w, "pg-b", violations);
  const keys = await readTransferKeys(w, [...amounts.keys()]);
  const kafka = await readKafka(w, amounts, violations);

  for (const [store, ids] of [
    ["pg-a", legsA.keys()],
    ["pg-b", legsB.keys()],
    ["kafka", kafka.events.keys()],
  ] as const) {
    for (const id of ids) if (!amounts.has(id)) violations.push(`${store} has unknown ${id}`);
  }
  const sum = (legs: Map<string, Leg>) => [...legs.values()].reduce((t, l) => t + l.delta, 0);
  const counters = new Map<number, number>();
  let countersTotal = 0;
  for (const client of new Set(outcomes.map((o) => o.spec.client))) {
    const value = Number((await w.redisDirect.get(soakKeys(w).counter(client))) ?? 0);
    counters.set(client, value);
    countersTotal += value;
  }
  if (
    -sum(legsA) !== sum(legsB) ||
    sum(legsB) !== countersTotal ||
    countersTotal !== kafka.amount
  ) {
    violations.push(
      `money not conserved: pg-a debits ${-sum(legsA)}, pg-b credits ${sum(legsB)}, ` +
        `redis counters ${countersTotal}, kafka amounts ${kafka.amount}`,
    );
  }

  const keyed = new Map<number, number>();
  let committed = 0;
  for (const o of outcomes) {
    const s = o.spec;
    const what = `transfer ${s.id} (xid ${o.xid ?? "-"}, told ${o.told}, doom ${s.doom})`;
    const a = legsA.get(s.id);
    const b = legsB.get(s.id);
    const key = keys.get(s.id);
    const events = kafka.events.get(s.id) ?? 0;
    const isIn = a !== undefined || b !== undefined || key !== undefined || events > 0;
    if (key !== undefined) keyed.set(s.client, (keyed.get(s.client) ?? 0) + Number(key));
    if (isIn) {
      committed += 1;
      const whole =
        a?.n === 1 &&
        a.delta === -s.amount &&
        b?.n === 1 &&
        b.delta === s.amount &&
        key === String(s.amount) &&
        events === 1;
      if (!whole) {
        violations.push(
          `${what}: not all-or-nothing: pg-a leg ${JSON.stringify(a)}, pg-b leg ` +
            `${JSON.stringify(b)}, redis key ${key ?? "absent"}, kafka events ${events} ` +
            `(amount ${s.amount})`,
        );
      }
    }
    if ((o.told === "committed" || o.told === "committing") && !isIn) {
      violations.push(`${what}: the client was told it committed, but it is nowhere`);
    }
    if ((o.told === "aborted" || o.told === "not-sent") && isIn) {
      violations.push(`${what}: it left effects although it ${o.told}`);
    }
    if (s.doom !== "none" && isIn) violations.push(`${what}: a doomed transfer committed`);
    if (o.xid === undefined) {
      if (isIn) violations.push(`${what}: committed, but its begin never answered`);
    } else if (states !== undefined) {
      const state = states.get(o.xid);
      if (state === undefined) violations.push(`${what}: no final state in the coordinator`);
      else if ((state === "committed") !== isIn) {
        violations.push(`${what}: coordinator says ${state}, stores say ${isIn ? "in" : "absent"}`);
      }
    }
  }
  for (const [client, value] of counters) {
    if (value !== (keyed.get(client) ?? 0)) {
      violations.push(
        `redis counter of client ${client}: ${value}, its keys say ${keyed.get(client) ?? 0}`,
      );
    }
  }
  for (const g of await preparedGids(w.bank.pools, clusterId)) {
    violations.push(`prepared transaction left behind: ${g}`);
  }
  for (const k of await redisLeftovers(w)) violations.push(`redis left behind: ${k}`);
  return {
    violations,
    found: {
      told: countTold(outcomes),
      committed,
      absent: outcomes.length - committed,
      kafkaEvents: kafka.total,
      kafkaAbortedRecords: kafka.aborted,
    },
  };
}
