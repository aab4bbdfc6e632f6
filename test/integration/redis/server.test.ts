// Proves what the Redis participant does with the server it is given, using throwaway
// redis-server processes (the shared one is never reconfigured): start refuses each unsafe
// setting (appendonly, appendfsync, maxmemory-policy) and a server whose CONFIG command is
// renamed away, naming each problem; `unsafeServer: "warn"` starts anyway, logs loudly and
// reports the problems in health; and a participant whose server goes away (SIGKILL) votes no
// on prepare and throws on commit within a bounded time, then commits the branch it staged
// before the crash once the server is back on the same port and append-only file.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import type { ParticipantLogger } from "../../../participants/common/logger.js";
import { RedisUnavailableError, UnsafeServerError } from "../../../participants/redis/errors.js";
import { createRedisParticipant } from "../../../participants/redis/participant.js";
import { branch, phase2Ctx, prepareCtx, suffix } from "./helpers.js";
import { startThrowawayRedis, type ThrowawayRedis } from "../../support/throwaway-redis.js";

const clusterId = `t-srv-${suffix()}`;
const servers: ThrowawayRedis[] = [];
const closers: (() => Promise<void>)[] = [];
/** A call against a dead server must fail well within this (connect and command timeouts are 1 s). */
const unavailableAnswerMsMax = 1_500;

after(async () => {
  await Promise.allSettled(closers.map((close) => close()));
  await Promise.allSettled(servers.map((s) => s.dispose()));
});

async function server(extraArgs: string[] = []): Promise<ThrowawayRedis> {
  const s = await startThrowawayRedis(extraArgs);
  servers.push(s);
  return s;
}

function participant(url: string, extra: Record<string, unknown> = {}, logger?: ParticipantLogger) {
  const p = createRedisParticipant(
    { name: "redis-throwaway", url, connectTimeoutMs: 1_000, commandTimeoutMs: 1_000, ...extra },
    { logger },
  );
  closers.push(() => p.close());
  return p;
}

async function refusal(extraArgs: string[]): Promise<UnsafeServerError> {
  const s = await server(extraArgs);
  const p = participant(s.url);
  const err = await p.start(clusterId).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof UnsafeServerError, `expected UnsafeServerError, got ${String(err)}`);
  await p.close();
  return err;
}

void describe("Redis participant: the server it runs on", () => {
  void test("refuses appendonly no", async () => {
    const err = await refusal(["--appendonly", "no"]);
    assert.match(err.message, /appendonly is no, must be yes/);
    assert.equal(err.problems.length, 1);
  });

  void test("refuses appendfsync everysec", async () => {
    const err = await refusal(["--appendfsync", "everysec"]);
    assert.match(err.message, /appendfsync is everysec, must be always/);
    assert.equal(err.problems.length, 1);
  });

  void test("refuses a maxmemory-policy that evicts", async () => {
    const err = await refusal(["--maxmemory-policy", "allkeys-lru"]);
    assert.match(err.message, /maxmemory-policy is allkeys-lru, must be noeviction/);
    assert.equal(err.problems.length, 1);
  });

  void test("refuses a server whose CONFIG command is renamed away, saying so", async () => {
    const err = await refusal(["--rename-command", "CONFIG", ""]);
    assert.match(err.message, /CONFIG is renamed or disabled/);
    assert.match(err.message, /appendonly yes, appendfsync always, maxmemory-policy noeviction/);
  });

  void test('with unsafeServer "warn" starts, logs loudly and reports each setting in health', async () => {
    const s = await server(["--appendonly", "no", "--maxmemory-policy", "volatile-lru"]);
    const errors: string[] = [];
    const logger: ParticipantLogger = {
      info: () => undefined,
      warn: () => undefined,
      error: (_obj, msg) => errors.push(msg),
    };
    const p = participant(s.url, { unsafeServer: "warn" }, logger);
    await p.start(clusterId);
    const health = await p.health();
    assert.equal(health.ok, true, health.detail);
    assert.equal(health.warnings.length, 2);
    assert.match(health.warnings.join("\n"), /appendonly is no/);
    assert.match(health.warnings.join("\n"), /maxmemory-policy is volatile-lru/);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /unsafe for two-phase commit.*unsafeServer is "warn"/);
  });

  void test("a server that goes away: prepare votes no and commit throws, quickly; the staged branch survives", async () => {
    const s = await server();
    const p = participant(s.url);
    await p.start(clusterId);
    const key = `k-${suffix()}`;
    const staged = branch(`${clusterId}:x1:1` as never, [{ op: "incrby", key, by: 7 }]);
    assert.deepEqual(await p.prepare(staged, prepareCtx()), { vote: "yes" });

    await s.kill();

    let started = Date.now();
    const vote = await p.prepare(
      branch(`${clusterId}:x2:1` as never, [{ op: "set", key: `${key}-2`, value: "x" }]),
      prepareCtx(),
    );
    assert.equal(vote.vote === "no" && vote.reason, "participant-unavailable");
    assert.ok(Date.now() - started < unavailableAnswerMsMax, `voted in ${Date.now() - started} ms`);

    started = Date.now();
    await assert.rejects(p.commit(staged, phase2Ctx), (err: unknown) => {
      assert.ok(err instanceof RedisUnavailableError, String(err));
      assert.equal(err.retryable, true);
      return true;
    });
    assert.ok(Date.now() - started < unavailableAnswerMsMax, `threw in ${Date.now() - started} ms`);
    assert.equal((await p.health()).ok, false);

    await s.restart();
    // The coordinator retries phase 2 with backoff; so does this loop, bounded.
    let outcome: unknown;
    for (let attempt = 0; attempt < 50 && outcome === undefined; attempt++) {
      outcome = await p.commit(staged, phase2Ctx).catch(async (err: unknown) => {
        assert.ok(err instanceof RedisUnavailableError, String(err));
        await sleep(200);
        return undefined;
      });
    }
    assert.deepEqual(outcome, { outcome: "done" }, "the branch staged before the crash commits");
    const direct = new Redis(s.url, { maxRetriesPerRequest: 1, commandTimeout: 2_000 });
    try {
      assert.equal(await direct.get(key), "7");
    } finally {
      direct.disconnect();
    }
    assert.deepEqual(await p.recover(), []);
    assert.equal((await p.health()).ok, true);
  });
});
