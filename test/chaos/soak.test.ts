/**
 * Proves that a node SIGKILLed at random moments, again and again, under concurrent
 * four-branch transfers (pg-a debit, pg-b credit, a Redis INCRBY and SET, one Kafka event),
 * loses nothing, duplicates nothing and leaves nothing half-done — read directly from
 * PostgreSQL, Redis and Kafka (read_committed, every partition): the CI size of the soak of
 * docs/soak.md (20 kills, 8 clients; VERDICT_SOAK_SEED=N replays a seed).
 *
 * And that its check is not vacuous: with effects written straight into the stores, it
 * passes on one whole transfer, then flags a second committed Kafka event of it (the bug a
 * black-box test found), a lost Redis key, and effects of a transfer told aborted.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import kafkajs from "kafkajs";
import { createMixedWorld, type MixedWorld } from "../crash/mixed-bank.js";
import { ensureBuilt, killLeftovers } from "../support/process-node.js";
import { services } from "../support/services.js";
import { checkSoakTruth } from "./soak-check.js";
import { runSoak, soakFigures, type SoakOptions } from "./soak.js";
import { freshSeed, soakKeys, type SoakOutcome, type SoakSpec } from "./soak-workload.js";

const { Kafka, logLevel } = kafkajs;

const options: SoakOptions = {
  seed: Number(process.env.VERDICT_SOAK_SEED ?? freshSeed()),
  kills: 20,
  clients: 8,
  killMsMin: 2_000,
  killMsMax: 4_000,
  accounts: 200,
  doomedPercent: 10,
  settleTimeoutMs: 60_000,
  transfersPerClientMax: 5_000,
  logLevel: "info",
};

before(ensureBuilt);
after(killLeftovers);

test(`random SIGKILLs under four-branch load (seed ${options.seed})`, async (t) => {
  assert.ok(Number.isSafeInteger(options.seed), "VERDICT_SOAK_SEED must be an integer");
  const result = await runSoak(options, (line) => t.diagnostic(line));
  for (const line of soakFigures(options, result)) t.diagnostic(line);
  assert.deepEqual(result.violations, [], `seed ${options.seed}; evidence ${result.evidenceDir}`);
  // A run in which nothing committed, aborted, or was cut short by a kill proves little.
  const told = result.found?.told;
  assert.ok(told !== undefined && told.committed > 0 && told.aborted > 0, JSON.stringify(told));
  assert.ok(told.unknown + told["not-sent"] > 0, "no kill hit a transfer");
});

test("the check flags a duplicate Kafka event, a lost Redis key, an aborted transfer's effects", async () => {
  const world = await createMixedWorld(4);
  const kafka = new Kafka({
    clientId: "soak-check-test",
    brokers: [...services.kafkaBrokers],
    logLevel: logLevel.NOTHING,
  });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    const one: SoakSpec = { id: "t1", client: 0, from: 1, to: 2, amount: 7, doom: "none" };
    const outcomes: SoakOutcome[] = [{ spec: one, xid: "x1", told: "committed" }];
    const states = new Map([["x1", "committed" as const]]);
    const check = async () =>
      (await checkSoakTruth(world, outcomes, states, "soak-check-test")).violations;
    await writeEffects(world, one);
    const event = { key: one.id, value: JSON.stringify({ id: one.id, amount: one.amount }) };
    await producer.send({ topic: world.topic, messages: [event] });
    assert.deepEqual(await check(), []);

    await producer.send({ topic: world.topic, messages: [event] });
    const duplicated = await check();
    assert.ok(
      duplicated.some((v) => v.includes("transfer t1") && v.includes("kafka events 2")),
      duplicated.join("\n"),
    );

    await world.redisDirect.del(soakKeys(world).transfer(one.id));
    outcomes[0] = { spec: one, xid: "x1", told: "aborted" };
    const broken = await check();
    assert.ok(
      broken.some((v) => v.includes("redis key absent")),
      broken.join("\n"),
    );
    assert.ok(broken.some((v) => v.includes("left effects although it aborted")));
  } finally {
    await producer.disconnect();
    await world.close(undefined);
  }
});

/** What a committed transfer leaves in PostgreSQL and Redis, written directly. */
async function writeEffects(world: MixedWorld, s: SoakSpec): Promise<void> {
  const legs = `insert into ${world.bank.legs} (id, acct, delta) values ($1, $2, $3)`;
  const move = `update ${world.bank.acct} set balance = balance + $1 where id = $2`;
  for (const [db, acct, delta] of [
    ["pg-a", s.from, -s.amount],
    ["pg-b", s.to, s.amount],
  ] as const) {
    await world.bank.pools[db].query(move, [delta, acct]);
    await world.bank.pools[db].query(legs, [s.id, acct, delta]);
  }
  const k = soakKeys(world);
  await world.redisDirect.incrby(k.counter(s.client), s.amount);
  await world.redisDirect.set(k.transfer(s.id), String(s.amount));
}
