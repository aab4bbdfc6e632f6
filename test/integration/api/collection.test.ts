/**
 * Proves the collection rule through a running node, reading PostgreSQL and Redis directly:
 * a finished transaction's participant records (PostgreSQL's `commit` and `rolled-back`
 * marker rows, Redis's outcome records) stay until max(deadline, finish + retention) plus
 * protocol.clockSkewMsMax, and are collected after it. The deadline here is later than
 * finish + retention, so a rule that forgets at finish + retention (+ skew), or at the
 * deadline without the skew, collects them before the check.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { pgStatements, redis, redisOps, sql, VerdictClient } from "../../../client/index.js";
import { services } from "../../support/services.js";
import { createAccounts, startApiNode, waitFor, type Accounts, type ApiNode } from "./harness.js";

const retentionMs = 200;
const clockSkewMsMax = 2_000;
const timeoutMs = 4_000;
/** How long before the earliest moment they may go the records are checked to be there. */
const checkBeforeDueMs = 700;

const namespace = `vt${randomBytes(6).toString("hex")}`;
let node: ApiNode;
let accounts: Accounts;
let client: VerdictClient;
let direct: Redis;

before(async () => {
  node = await startApiNode({
    protocol: { retentionMs, clockSkewMsMax },
    participants: [{ name: "redis-c", kind: "redis", url: services.redisUrl, namespace }],
  });
  accounts = await createAccounts({ "pg-a": [[1, 100]], "pg-b": [] });
  client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
  direct = new Redis(services.redisUrl, { commandTimeout: 5_000, maxRetriesPerRequest: 1 });
});
after(async () => {
  try {
    await node?.stop();
  } finally {
    await accounts?.drop();
    const keys = await direct.keys(`${namespace}:*`);
    if (keys.length > 0) await direct.del(...keys);
    direct.disconnect();
  }
});

/** Begins a transaction of one PostgreSQL and one Redis branch, and prepares it. */
async function prepared(key: string): Promise<string> {
  const { xid } = await client.begin({ timeoutMs });
  const debit = `update ${accounts.table} set balance = balance - 1 where id = 1`;
  await client.enlist(xid, pgStatements("pg-a", [sql(debit, [], { expectRows: 1 })]));
  await client.enlist(xid, redisOps("redis-c", [redis.set(key, "1")]));
  assert.equal((await client.prepare(xid)).state, "prepared");
  return xid;
}

describe("collection after max(deadline, finish + retention) + clock skew", () => {
  test("marker rows and outcome records stay until then, and go after", async () => {
    const begunMs = Date.now(); // no later than the node's begin time of either
    const committed = await prepared(`${namespace}-user:a`);
    assert.equal((await client.commit(committed)).state, "committed");
    const aborted = await prepared(`${namespace}-user:b`);
    assert.equal((await client.abort(aborted)).state, "aborted");

    const gid = (xid: string, n: number) => `${node.node.clusterId}:${xid}:${n}`;
    const records = async (): Promise<string[]> => {
      const { rows } = await accounts.pools["pg-a"].query<{ kind: string }>(
        `select kind from "${node.schema}".marker where gid = any($1::text[]) order by kind`,
        [[gid(committed, 1), gid(aborted, 1)]],
      );
      const outcomes = await Promise.all(
        [committed, aborted].map((xid) =>
          direct.hget(`${namespace}:outcome:${gid(xid, 2)}`, "outcome"),
        ),
      );
      return [...rows.map((r) => `pg:${r.kind}`), ...outcomes.map((o) => `redis:${o}`)];
    };
    const all = ["pg:commit", "pg:rolled-back", "redis:committed", "redis:rolled-back"];
    await waitFor("every record written", async () =>
      (await records()).length === 4 ? true : undefined,
    );

    const dueMs = begunMs + timeoutMs + clockSkewMsMax;
    await new Promise((resolve) => setTimeout(resolve, dueMs - checkBeforeDueMs - Date.now()));
    assert.deepEqual(await records(), all, "collected before the deadline plus the clock skew");

    await waitFor("every record collected", async () =>
      (await records()).every((r) => r === "redis:null") ? true : undefined,
    );
    assert.ok(Date.now() >= dueMs - checkBeforeDueMs);
  });
});
