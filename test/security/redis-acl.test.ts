/**
 * The Redis ACL of docs/security.md ("Hardening checklists", the `ACL SETUSER` line, read from
 * the document itself) is enough for the Redis participant and no more, on a throwaway
 * redis-server (the shared one is never reconfigured):
 * - with only that user, the participant starts (server checks, scripts, cluster
 *   registration), stages and commits a branch using every operation and precondition kind,
 *   rolls one back, recovers, inspects, forgets and reports healthy; the values are read
 *   directly with the server's default user;
 * - the same user is refused (NOPERM) what the participant never needs: FLUSHALL, KEYS,
 *   CONFIG SET, an arbitrary EVAL, and keys outside the namespace and the data patterns; a
 *   branch on such a key does not commit and writes nothing.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import type { BranchId } from "../../participants/participant.js";
import {
  createRedisParticipant,
  type RedisParticipant,
} from "../../participants/redis/participant.js";
import { branch, phase2Ctx, prepareCtx } from "../integration/redis/helpers.js";
import { startThrowawayRedis, type ThrowawayRedis } from "../support/throwaway-redis.js";

const clusterId = `acl-${randomBytes(3).toString("hex")}`;
const password = randomBytes(18).toString("base64url");
let server: ThrowawayRedis;
let admin: Redis;
let limited: Redis;
let p: RedisParticipant;
let n = 0;
const branchId = () => `${clusterId}:x${++n}:1` as BranchId;

/** The `ACL SETUSER` line of docs/security.md, as the words to send. */
async function documentedAcl(): Promise<string[]> {
  const doc = await readFile(new URL("../../docs/security.md", import.meta.url), "utf8");
  const line = /^ACL SETUSER verdict .*$/m.exec(doc)?.[0];
  assert.ok(line, "docs/security.md has no `ACL SETUSER verdict …` line");
  return line.replace(">SECRET", `>${password}`).split(/\s+/).slice(2);
}

before(async () => {
  server = await startThrowawayRedis();
  admin = new Redis(server.url, { commandTimeout: 5_000, maxRetriesPerRequest: 1 });
  await admin.call("ACL", "SETUSER", ...(await documentedAcl()));
  const url = `redis://verdict:${password}@127.0.0.1:${server.port}`;
  limited = new Redis(url, { commandTimeout: 5_000, maxRetriesPerRequest: 1 });
  p = createRedisParticipant({
    name: "redis-acl",
    url,
    namespace: "verdict",
    connectTimeoutMs: 2_000,
    commandTimeoutMs: 2_000,
  });
  await p.start(clusterId);
});
after(async () => {
  await p?.close();
  limited?.disconnect();
  admin?.disconnect();
  await server?.dispose();
});

describe("the documented Redis ACL", () => {
  test("is enough: every operation, rollback, recover, inspect, forget, health", async () => {
    await admin.set("acct:gone", "x");
    await admin.set("acct:equal", "v");
    await admin.set("acct:counter", "40");
    await admin.hset("acct:hash", "drop", "1");
    await admin.sadd("acct:set", "a");
    const b = branch(
      branchId(),
      [
        { op: "set", key: "acct:plain", value: "hello", ttlMs: 60_000 },
        { op: "del", key: "acct:gone" },
        { op: "incrby", key: "acct:counter", by: 2 },
        { op: "hset", key: "acct:hash", field: "new", value: "3" },
        { op: "hdel", key: "acct:hash", field: "drop" },
        { op: "sadd", key: "acct:set", values: ["b"] },
        { op: "srem", key: "acct:set", values: ["a"] },
        { op: "lpush", key: "acct:list", values: ["l"] },
        { op: "rpush", key: "acct:list", values: ["r"] },
      ],
      [
        { key: "acct:equal", equals: "v" },
        { key: "acct:counter", exists: true },
        { key: "acct:absent", absent: true },
      ],
    );
    assert.deepEqual(await p.prepare(b, prepareCtx()), { vote: "yes" });
    assert.deepEqual(await p.recover(), [b.branchId]);
    const view = await p.inspect(b.branchId);
    assert.ok(view.kind === "redis" && view.holds === "prepared", JSON.stringify(view));
    assert.equal(view.locksHeld.length, 8, "every key's lock, read back");
    assert.deepEqual(await p.commit(b, phase2Ctx), { outcome: "done" });
    assert.equal(await admin.get("acct:plain"), "hello");
    assert.equal(await admin.exists("acct:gone"), 0);
    assert.equal(await admin.get("acct:counter"), "42");
    assert.deepEqual(await admin.hgetall("acct:hash"), { new: "3" });
    assert.deepEqual(await admin.smembers("acct:set"), ["b"]);
    assert.deepEqual(await admin.lrange("acct:list", 0, -1), ["l", "r"]);

    const r = branch(branchId(), [{ op: "set", key: "acct:never", value: "x" }]);
    assert.deepEqual(await p.prepare(r, prepareCtx()), { vote: "yes" });
    assert.deepEqual(await p.rollback(r, phase2Ctx), { outcome: "done" });
    assert.equal(await admin.exists("acct:never"), 0);
    assert.deepEqual(await p.recover(), []);
    await p.forget([b.branchId, r.branchId]);
    assert.equal(await admin.exists(`verdict:outcome:${b.branchId}`), 0);
    const health = await p.health();
    assert.ok(health.ok, JSON.stringify(health));
  });

  test("is no more: commands and keys the participant never needs are refused", async () => {
    const refused = async (what: string, call: () => Promise<unknown>) => {
      await assert.rejects(call(), /NOPERM/, what);
    };
    await refused("FLUSHALL", () => limited.flushall());
    await refused("KEYS", () => limited.keys("*"));
    await refused("CONFIG SET", () => limited.config("SET", "appendonly", "no"));
    await refused("EVAL", () => limited.eval("return 1", 0));
    await refused("a key outside the patterns", () => limited.get("other:1"));
    await refused("SET outside", () => limited.set("other:1", "x"));

    await admin.set("other:1", "before");
    const b = branch(branchId(), [{ op: "set", key: "other:1", value: "after" }]);
    const vote = await p.prepare(b, prepareCtx()).catch((e: unknown) => e);
    assert.notDeepEqual(vote, { vote: "yes" }, "a branch on a key outside the ACL");
    assert.equal(await admin.get("other:1"), "before");
    assert.deepEqual(await p.recover(), []);
  });
});
