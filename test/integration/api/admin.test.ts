/**
 * The operators' read endpoints show the truth of the log and the participants:
 * - a committed transfer is listed, and its admin view carries the owner, each branch's state
 *   and the log history (preparing, decision, acknowledgements) in index order;
 * - a transaction left prepared (prepare-only) is listed first, as in doubt;
 * - participants report their health and this cluster's prepared branches (read from the
 *   database);
 * - the cluster status is what the node really is, not a canned answer: its configured id,
 *   the address it listens on, and the commit index and term of its decision log as read
 *   from the log's files;
 * - a client token is refused on every admin route (403 forbidden).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { NodeStorage } from "../../../coordinator/log/node-storage.js";
import { readWalReadOnly } from "../../../coordinator/log/wal-reader.js";
import { pgStatements, sql, VerdictClient } from "../../../client/index.js";
import {
  assertError,
  createAccounts,
  raw,
  startApiNode,
  type Accounts,
  type ApiNode,
  waitFor,
} from "./harness.js";

/** The node's id in test/support/node.ts's configuration. */
const configuredNodeId = "test-1";

/** Index and term of the last durable entry, read from the log's files (read-only). */
async function lastLogEntry(dataDir: string): Promise<{ index: number; term: number }> {
  let last = { index: 0, term: 0 };
  for await (const event of readWalReadOnly(new NodeStorage(), join(dataDir, "log"))) {
    if (event.kind === "entry" || event.kind === "snapshot") {
      last = { index: event.index, term: event.term };
    }
  }
  return last;
}

interface ClusterView {
  clusterId: string;
  nodeId: string;
  leaderId: string | null;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  members: { id: string; url: string; leader: boolean; role: string }[];
}

let node: ApiNode;
let accounts: Accounts;
let client: VerdictClient;

interface AdminView {
  xid: string;
  state: string;
  inDoubt: boolean;
  principal: string;
  branches: { branch: number; state: string }[];
  history: { index: number; entry: string }[];
}

describe("admin endpoints", () => {
  before(async () => {
    node = await startApiNode();
    accounts = await createAccounts({ "pg-a": [[1, 100]], "pg-b": [[1, 100]] });
    client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
  });
  after(async () => {
    await accounts?.drop();
    await node?.stop();
  });

  const move = (xid: string) =>
    Promise.all([
      client.enlist(
        xid,
        pgStatements("pg-a", [
          sql(`update ${accounts.table} set balance = balance - 1 where id = 1`, [], {
            expectRows: 1,
          }),
        ]),
      ),
      client.enlist(
        xid,
        pgStatements("pg-b", [
          sql(`update ${accounts.table} set balance = balance + 1 where id = 1`, [], {
            expectRows: 1,
          }),
        ]),
      ),
    ]);

  test("a committed transfer shows its owner, branches and history; a prepared one is in doubt and first", async () => {
    const done = await client.begin({ timeoutMs: 10_000 });
    await move(done.xid);
    await client.commit(done.xid);
    const held = await client.begin({ timeoutMs: 10_000 });
    await move(held.xid);
    await client.prepare(held.xid);

    const list = await raw(node.url, "GET", "/admin/v1/transactions", { token: node.adminToken });
    assert.equal(list.status, 200, list.text);
    const rows = (list.body as { transactions: { xid: string; inDoubt: boolean }[] }).transactions;
    assert.equal(rows[0]?.xid, held.xid, "the prepared transaction is listed first");
    assert.equal(rows[0]?.inDoubt, true);
    assert.ok(rows.some((r) => r.xid === done.xid && !r.inDoubt));

    const one = await raw(node.url, "GET", `/admin/v1/transactions/${done.xid}`, {
      token: node.adminToken,
    });
    assert.equal(one.status, 200, one.text);
    const view = one.body as AdminView;
    assert.equal(view.state, "committed");
    assert.equal(view.principal, "client-a");
    assert.deepEqual(
      view.branches.map((b) => b.state),
      ["committed", "committed"],
    );
    const kinds = view.history.map((h) => h.entry);
    assert.equal(kinds[0], "preparing");
    assert.ok(kinds.includes("decision"));
    assert.ok(kinds.includes("acknowledge"));
    const indices = view.history.map((h) => h.index);
    assert.deepEqual(
      indices,
      [...indices].sort((a, b) => a - b),
    );

    const participants = await raw(node.url, "GET", "/admin/v1/participants", {
      token: node.adminToken,
    });
    assert.equal(participants.status, 200, participants.text);
    const list2 = (
      participants.body as {
        participants: { name: string; ok: boolean; preparedBranches: string[] }[];
      }
    ).participants;
    assert.deepEqual(
      list2.map((p) => [p.name, p.ok]),
      [
        ["pg-a", true],
        ["pg-b", true],
      ],
    );
    for (const p of list2) {
      assert.deepEqual(
        p.preparedBranches.filter((id) => id.includes(held.xid)).length,
        1,
        `${p.name} holds the prepared branch`,
      );
    }
    await client.abort(held.xid);
  });

  test("the cluster reports the node's id, address, commit index and term", async () => {
    // The test above wrote entries: the log's last index is well past 0.
    const { cluster, log } = await waitFor("the cluster status and the log agree", async () => {
      const c = await raw(node.url, "GET", "/admin/v1/cluster", { token: node.adminToken });
      assert.equal(c.status, 200, c.text);
      const body = c.body as ClusterView;
      const last = await lastLogEntry(node.dataDir);
      return body.commitIndex === last.index ? { cluster: body, log: last } : undefined;
    });
    assert.ok(log.index > 2, `log index ${log.index}`);
    assert.equal(cluster.clusterId, node.node.clusterId);
    assert.equal(cluster.nodeId, configuredNodeId);
    assert.equal(cluster.leaderId, configuredNodeId);
    assert.equal(cluster.term, log.term);
    assert.equal(cluster.appliedIndex, log.index);
    assert.deepEqual(cluster.members, [
      { id: configuredNodeId, url: node.url, role: "leader", leader: true },
    ]);
  });

  test("a client token is refused on admin routes", async () => {
    for (const path of ["/admin/v1/transactions", "/admin/v1/participants", "/admin/v1/cluster"]) {
      assertError(
        await raw(node.url, "GET", path, { token: node.clientToken }),
        403,
        "forbidden",
        path,
      );
    }
  });
});
