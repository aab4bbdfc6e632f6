/**
 * The probes tell liveness, readiness and health apart, on a real node with real participants:
 * - all up: /livez 200 alive, /readyz 200 ready, /healthz `ok` with the log open and every
 *   participant ok;
 * - a participant whose server is killed (a throwaway Redis) makes the node `degraded` on
 *   /healthz (that participant not ok, the others ok) while /readyz and /livez stay 200, a
 *   PostgreSQL-only transaction still commits and a transaction with a Redis branch aborts
 *   (its branch votes no); once the server is back the node is `ok` again;
 * - a draining node answers /readyz 503 unavailable (and /healthz `unavailable`), /livez 200;
 * - a decision log that is closed makes the node unready, whatever the participants say.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pgStatements, redis, redisOps, sql, VerdictClient } from "../../../client/index.js";
import type { HealthzResponse } from "../../../coordinator/api/contract/health.js";
import { NodeHealth } from "../../../coordinator/api/health.js";
import { LocalDecisionLog } from "../../../coordinator/log/local-decision-log.js";
import { NodeStorage } from "../../../coordinator/log/node-storage.js";
import { startTestNode } from "../../support/node.js";
import { startThrowawayRedis, type ThrowawayRedis } from "../../support/throwaway-redis.js";
import { assertError, raw, startApiNode, waitFor, type ApiNode } from "./harness.js";

const healthOf = async (url: string): Promise<HealthzResponse> => {
  const answer = await raw(url, "GET", "/healthz");
  assert.equal(answer.status, 200, answer.text);
  return answer.body as HealthzResponse;
};
const participantsOk = (h: HealthzResponse) => h.participants.map((p) => [p.name, p.ok]);

describe("a participant down degrades the node, never kills it", () => {
  let server: ThrowawayRedis;
  let node: ApiNode;
  let client: VerdictClient;

  before(async () => {
    server = await startThrowawayRedis();
    node = await startApiNode({
      participants: [
        {
          name: "redis-x",
          kind: "redis",
          url: server.url,
          namespace: `vt${randomBytes(6).toString("hex")}`,
          connectTimeoutMs: 200,
          commandTimeoutMs: 200,
          reconnectDelayMsMax: 100,
        },
      ],
    });
    client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
  });
  after(async () => {
    try {
      await node?.stop();
    } finally {
      await server?.dispose();
    }
  });

  test("all up: alive, ready, ok", async () => {
    assert.deepEqual((await raw(node.url, "GET", "/livez")).body, { status: "alive" });
    assert.deepEqual((await raw(node.url, "GET", "/readyz")).body, { status: "ready" });
    const health = await healthOf(node.url);
    assert.equal(health.status, "ok");
    assert.equal(health.lifecycle, "serving");
    assert.equal(health.log.state, "open");
    assert.deepEqual(participantsOk(health), [
      ["pg-a", true],
      ["pg-b", true],
      ["redis-x", true],
    ]);
  });

  test("redis killed: degraded, still ready and alive, other work goes on", async () => {
    await server.kill();
    const health = await healthOf(node.url);
    assert.equal(health.status, "degraded", JSON.stringify(health));
    assert.deepEqual(participantsOk(health), [
      ["pg-a", true],
      ["pg-b", true],
      ["redis-x", false],
    ]);
    assert.equal((await raw(node.url, "GET", "/readyz")).status, 200);
    assert.equal((await raw(node.url, "GET", "/livez")).status, 200);

    const pgOnly = await client.begin({ timeoutMs: 10_000 });
    await client.enlist(pgOnly.xid, pgStatements("pg-a", [sql("select 1")]));
    await client.enlist(pgOnly.xid, pgStatements("pg-b", [sql("select 1")]));
    assert.equal((await client.commit(pgOnly.xid)).state, "committed");

    const withRedis = await client.begin({ timeoutMs: 10_000 });
    await client.enlist(withRedis.xid, pgStatements("pg-a", [sql("select 1")]));
    await client.enlist(withRedis.xid, redisOps("redis-x", [redis.set("k", "v")]));
    const commit = await raw(node.url, "POST", `/v1/transactions/${withRedis.xid}/commit`, {
      token: node.clientToken,
      body: {},
    });
    assertError(commit, 409, "transaction-aborted", "the redis branch votes no");
  });

  test("redis back: ok again", async () => {
    await server.restart();
    const health = await waitFor("the node is ok again", async () => {
      const h = await healthOf(node.url);
      return h.status === "ok" ? h : undefined;
    });
    assert.deepEqual(participantsOk(health).at(-1), ["redis-x", true]);
  });
});

describe("a draining node is alive and not ready", () => {
  test("/readyz answers 503 while the node drains; /livez 200", async () => {
    const t = await startTestNode({ protocol: { shutdownGraceMs: 3_000 } });
    try {
      const client = new VerdictClient({ baseUrl: t.url, token: t.clientToken });
      // A transaction under way holds the drain for its grace period.
      const { xid } = await client.begin({ timeoutMs: 60_000 });
      await client.enlist(xid, pgStatements("pg-a", [sql("select 1")]));
      const stopping = t.node.stop();
      try {
        const ready = await waitFor("/readyz answers 503", async () => {
          const answer = await raw(t.url, "GET", "/readyz");
          return answer.status === 503 ? answer : undefined;
        });
        assertError(ready, 503, "unavailable", "/readyz while draining");
        assert.match(ready.text, /the node is draining/);
        assert.equal((await raw(t.url, "GET", "/livez")).status, 200);
        const health = await healthOf(t.url);
        assert.equal(health.status, "unavailable");
        assert.equal(health.lifecycle, "draining");
      } finally {
        await stopping;
      }
    } finally {
      await t.cleanup();
    }
  });
});

describe("a closed decision log is not ready", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "verdict-probe-log-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("open: ready; closed: not ready, and the summary says closed", async () => {
    const log = await LocalDecisionLog.open<string>({
      storage: new NodeStorage(),
      dir,
      segmentBytesMax: 1024 * 1024,
      recordBytesMax: 1024,
    });
    await log.append(["one"]);
    const health = new NodeHealth({
      lifecycle: () => "serving",
      logRefusal: () => log.refusal(),
      logLastIndex: () => log.lastIndex(),
      participants: [],
      participantHealth: () => Promise.reject(new Error("no participant")),
    });
    assert.deepEqual(health.readiness(), { ready: true });
    assert.equal((await health.summary()).status, "ok");
    await log.close();
    const readiness = health.readiness();
    assert.equal(readiness.ready, false);
    assert.match(JSON.stringify(readiness), /the decision log is closed/);
    const summary = await health.summary();
    assert.equal(summary.status, "unavailable");
    assert.deepEqual(summary.log, {
      state: "closed",
      lastIndex: 1,
      detail: "the decision log is closed",
    });
  });
});
