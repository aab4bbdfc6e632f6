// Proves that the Redis server deploy/local starts does what Verdict's Redis participant relies
// on: an fsynced append-only file (appendonly yes, appendfsync always) and no eviction; a Lua
// script reading and writing several keys runs atomically under concurrency, where the same work
// done as client-side GET-then-SET loses updates (so the check can fail); and a script that errors
// half-way keeps its earlier writes — Redis scripts do not roll back, which is why Verdict checks
// everything at prepare and lets nothing fail at commit.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { services } from "../../support/services.js";

const clientCount = 20;
const incrementsPerClient = 50;
const expectedTotal = clientCount * incrementsPerClient;
const commandTimeoutMs = 10_000;

// Unique per run, so repeated or parallel runs never share keys; every key made is deleted after.
const keyPrefix = `verdict-svctest:${process.pid}:${randomBytes(4).toString("hex")}:`;
const keysMade = new Set<string>();
function key(name: string): string {
  const made = keyPrefix + name;
  keysMade.add(made);
  return made;
}

// Reads two counters, refuses to go on if they ever differ, and increments both: a torn,
// interleaved execution would show as a lost update or as the error.
const incrementPairScript = `
local a = tonumber(redis.call('GET', KEYS[1]) or '0')
local b = tonumber(redis.call('GET', KEYS[2]) or '0')
if a ~= b then return redis.error_reply('counters diverged: ' .. a .. ' ~= ' .. b) end
redis.call('SET', KEYS[1], a + 1)
redis.call('SET', KEYS[2], b + 1)
return a + 1
`;

// Writes KEYS[1], then INCRs KEYS[2] (which holds text, so the call raises), then would write
// KEYS[3]: the error stops the script half-way.
const failHalfWayScript = `
redis.call('SET', KEYS[1], 'written-before-error')
redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[3], 'never-written')
return 'unreachable'
`;

function connect(): Redis {
  return new Redis(services.redisUrl, {
    commandTimeout: commandTimeoutMs,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
  });
}

/** Runs `increment` incrementsPerClient times on each of clientCount connections at once. */
async function runConcurrently(
  clients: Redis[],
  increment: (client: Redis) => Promise<void>,
): Promise<void> {
  await Promise.all(
    clients.map(async (client) => {
      for (let i = 0; i < incrementsPerClient; i++) await increment(client);
    }),
  );
}

void describe("Redis server for two-phase commit (deploy/local)", () => {
  const admin = connect();
  const clients = Array.from({ length: clientCount }, connect);

  before(async () => {
    await Promise.all([admin, ...clients].map((client) => client.connect()));
  });

  after(async () => {
    try {
      if (keysMade.size > 0) await admin.del(...keysMade);
    } finally {
      await Promise.all([admin, ...clients].map((client) => client.quit()));
    }
  });

  async function config(name: string): Promise<string | undefined> {
    const reply = (await admin.config("GET", name)) as string[];
    return reply[1];
  }

  void test("runs with appendonly yes, appendfsync always and maxmemory-policy noeviction", async () => {
    assert.equal(await config("appendonly"), "yes");
    assert.equal(await config("appendfsync"), "always");
    assert.equal(await config("maxmemory-policy"), "noeviction");
  });

  void test(`a multi-key script run ${expectedTotal} times by ${clientCount} clients loses nothing`, async () => {
    const a = key("atomic:a");
    const b = key("atomic:b");
    await runConcurrently(clients, async (client) => {
      await client.eval(incrementPairScript, 2, a, b);
    });
    assert.equal(await admin.get(a), String(expectedTotal));
    assert.equal(await admin.get(b), String(expectedTotal));
  });

  void test("the same increments as client-side GET-then-SET lose updates (the check can fail)", async () => {
    const counter = key("racy");
    await runConcurrently(clients, async (client) => {
      const value = Number((await client.get(counter)) ?? "0");
      await client.set(counter, String(value + 1));
    });
    const total = Number(await admin.get(counter));
    assert.ok(total < expectedTotal, `expected lost updates, got all ${total}`);
  });

  void test("a script that errors half-way keeps its earlier writes (no rollback)", async () => {
    const written = key("halfway:written");
    const text = key("halfway:text");
    const unwritten = key("halfway:unwritten");
    await admin.set(text, "not-an-integer");

    await assert.rejects(admin.eval(failHalfWayScript, 3, written, text, unwritten), (error) => {
      assert.match(String(error), /not an integer/);
      return true;
    });
    assert.equal(await admin.get(written), "written-before-error", "the earlier write stays");
    assert.equal(await admin.get(text), "not-an-integer");
    assert.equal(await admin.exists(unwritten), 0, "the script stopped at the error");
  });
});
