/**
 * The Redis participant over TLS and an ACL user (docs/tls-backends.md), against a throwaway
 * redis-server that serves TLS only (its certificate signed by a CA this test generates)
 * and whose default user is off:
 * - with a `rediss://verdict:<password>@…` url and `tls.caFile` a branch prepares and commits,
 *   read back on a direct TLS connection; so it does with a client certificate;
 * - a CA that did not sign the server's certificate stops `start` at once with a
 *   non-retryable configuration error naming TLS (not a wait for the connect timeout);
 * - a wrong ACL password stops `start` at once too (not retryable), and the password is not
 *   in the message;
 * - the server refuses a plaintext client (no answer to a command);
 * - `tls` with a `redis://` url is refused when the participant is made.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Redis } from "ioredis";
import type { BranchId } from "../../participants/participant.js";
import { createRedisParticipant } from "../../participants/redis/participant.js";
import type { RedisParticipantConfigInput } from "../../participants/redis/config.js";
import { branch, phase2Ctx, prepareCtx } from "../integration/redis/helpers.js";
import { suffix } from "../support/participant-helpers.js";
import { createTestCa, type TestCa } from "../support/tls-ca.js";
import { startTlsRedis, type TlsRedis } from "../support/tls-redis.js";

let ca: TestCa;
let server: TlsRedis;
let direct: Redis;
const clusterId = `tls-redis-${suffix()}`;

before(async () => {
  ca = await createTestCa();
  server = await startTlsRedis(ca);
  direct = server.direct();
  await direct.connect();
});
after(async () => {
  direct?.disconnect();
  await server?.dispose();
  await ca?.dispose();
});

const participant = (overrides: Partial<RedisParticipantConfigInput> = {}) =>
  createRedisParticipant({
    name: "redis-tls",
    url: server.url,
    namespace: "vtls",
    connectTimeoutMs: 5_000,
    tls: { caFile: ca.caFile },
    ...overrides,
  });

let n = 0;
async function commitSet(p: ReturnType<typeof participant>, key: string, value: string) {
  const b = branch(`${clusterId}:x${++n}:1` as BranchId, [{ op: "set", key, value }]);
  assert.deepEqual(await p.prepare(b, prepareCtx()), { vote: "yes" });
  assert.deepEqual(await p.commit(b, phase2Ctx), { outcome: "done" });
}

void test("rediss:// with an ACL user and tls.caFile: a branch commits", async () => {
  const p = participant();
  try {
    await p.start(clusterId);
    await commitSet(p, "tls:a", "one");
    assert.equal(await direct.get("tls:a"), "one");
  } finally {
    await p.close();
  }
});

void test("with a client certificate too: a branch commits", async () => {
  const p = participant({
    tls: { caFile: ca.caFile, certFile: ca.clientCertFile, keyFile: ca.clientKeyFile },
  });
  try {
    await p.start(clusterId);
    await commitSet(p, "tls:b", "two");
    assert.equal(await direct.get("tls:b"), "two");
  } finally {
    await p.close();
  }
});

void test("a CA that did not sign the server's certificate stops start at once", async () => {
  const p = participant({ tls: { caFile: ca.otherCaFile }, connectTimeoutMs: 20_000 });
  const started = Date.now();
  try {
    await assert.rejects(p.start(clusterId), (e: Error & { retryable?: boolean }) => {
      assert.equal(e.name, "RedisConfigError");
      assert.equal(e.retryable, false);
      assert.match(
        e.message,
        /participant redis-tls: TLS: the server's certificate is not trusted/,
      );
      return true;
    });
    assert.ok(Date.now() - started < 10_000, "refused without waiting for the connect timeout");
  } finally {
    await p.close();
  }
});

void test("a wrong ACL password stops start; the password is not in the message", async () => {
  const wrong = "not-the-password-91ab";
  const p = participant({ url: `rediss://verdict:${wrong}@127.0.0.1:${server.port}` });
  try {
    await assert.rejects(p.start(clusterId), (e: Error & { retryable?: boolean }) => {
      assert.equal(e.retryable, false);
      assert.match(e.message, /Redis refused the url's user and password \(WRONGPASS/);
      assert.ok(!e.message.includes(wrong), e.message);
      return true;
    });
  } finally {
    await p.close();
  }
});

void test("the server refuses a plaintext client", async () => {
  const plain = new Redis(`redis://verdict:${server.password}@127.0.0.1:${server.port}`, {
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
  });
  plain.on("error", () => undefined);
  try {
    await assert.rejects(async () => {
      await plain.connect();
      await plain.ping();
    });
  } finally {
    plain.disconnect();
  }
});

void test("tls with a redis:// url is refused", () => {
  assert.throws(
    () => participant({ url: `redis://127.0.0.1:${server.port}` }),
    /tls needs a rediss:\/\/ url/,
  );
});
