/**
 * Proves that a node starts while a participant's server is down, and takes the participant
 * up once the server is back: the node listens at once (it may have decisions to finish on
 * the others); meanwhile a branch on that participant votes no with `participant-unavailable`
 * and the participant shows unhealthy; once the server is started again, within the retry
 * backoff, a transaction on it and on PostgreSQL commits, read back from both servers.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { pgStatements, redis, redisOps, sql, VerdictClient } from "../../client/index.js";
import { TransactionAbortedError } from "../../client/errors.js";
import {
  createAccounts,
  raw,
  startApiNode,
  waitFor,
  type Accounts,
  type ApiNode,
} from "../integration/api/harness.js";
import { startThrowawayRedis, type ThrowawayRedis } from "../support/throwaway-redis.js";

/** The late start retries with backoff from 0.5 s to 30 s; this covers several rounds. */
const upWithinMs = 40_000;

interface Health {
  participants: { name: string; ok: boolean; detail: string }[];
}

describe("a participant unreachable when the node starts", () => {
  let server: ThrowawayRedis;
  let node: ApiNode;
  let accounts: Accounts;
  let client: VerdictClient;
  const namespace = `late-${randomBytes(4).toString("hex")}`;
  const key = `${namespace}-counter`;

  before(async () => {
    server = await startThrowawayRedis();
    await server.kill();
    accounts = await createAccounts({ "pg-a": [[1, 100]], "pg-b": [] });
    node = await startApiNode({
      participants: [
        {
          name: "redis-late",
          kind: "redis",
          url: server.url,
          namespace,
          connectTimeoutMs: 500,
          commandTimeoutMs: 1_000,
        },
      ],
    });
    client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
  });

  after(async () => {
    await node?.stop();
    await accounts?.drop();
    await server?.dispose();
  });

  const health = async (): Promise<Health["participants"][number] | undefined> => {
    const answer = await raw(node.url, "GET", "/admin/v1/participants", { token: node.adminToken });
    return (answer.body as Health).participants.find((p) => p.name === "redis-late");
  };
  const transfer = async () => {
    const { xid } = await client.begin({ timeoutMs: 10_000 });
    await client.enlist(
      xid,
      pgStatements("pg-a", [
        sql(`update ${accounts.table} set balance = balance - 1 where id = 1`, [], {
          expectRows: 1,
        }),
      ]),
    );
    await client.enlist(xid, redisOps("redis-late", [redis.incrby(key, 1)]));
    return client.commit(xid);
  };

  test("the node listens; the participant is unhealthy and its branches vote no", async () => {
    const h = await health();
    assert.equal(h?.ok, false);
    assert.match(h?.detail ?? "", /not started/);
    await assert.rejects(transfer(), (err: unknown) => {
      assert.ok(err instanceof TransactionAbortedError, String(err));
      assert.match(err.reason?.message ?? "", /participant-unavailable/);
      return true;
    });
    assert.equal(await accounts.balance("pg-a", 1), 100);
  });

  test("once the server is back the participant starts, and a transaction commits", async () => {
    await server.restart();
    await waitFor(
      "the participant started",
      async () => ((await health())?.ok ? true : undefined),
      upWithinMs,
    );
    const view = await transfer();
    assert.equal(view.state, "committed");
    assert.equal(await accounts.balance("pg-a", 1), 99);
    const reader = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await reader.connect();
      assert.equal(await reader.get(key), "1");
    } finally {
      reader.disconnect();
    }
  });
});
