/**
 * The admin API shows each participant's own view beside Verdict's (real node, real
 * PostgreSQL):
 * - a prepared transfer's `participants[…].view` is each database's pg_prepared_xacts row,
 *   with the locks it holds;
 * - after a DBA's ROLLBACK PREPARED of one branch, that branch's view is `absent` while
 *   Verdict still believes it prepared: the two sides disagree, visibly;
 * - `/admin/v1/participants` lists each prepared branch with its age and whether the log
 *   explains it: the transfer's are explained (state prepared), an orphan prepared by hand
 *   under this cluster's prefix is not.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { VerdictClient } from "../../../client/index.js";
import type { ParticipantsResponse } from "../../../coordinator/api/contract/schemas.js";
import {
  adminView,
  createAccounts,
  dbaRollback,
  preparedTransfer,
  raw,
  startApiNode,
  type Accounts,
  type ApiNode,
} from "./harness.js";
import { services } from "../../support/services.js";

let node: ApiNode;
let accounts: Accounts;
let client: VerdictClient;

describe("participant views in the admin API", () => {
  before(async () => {
    node = await startApiNode();
    accounts = await createAccounts({ "pg-a": [[1, 100]], "pg-b": [[1, 100]] });
    client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
  });
  after(async () => {
    await accounts?.drop();
    await node?.stop();
  });

  test("a prepared transfer: each branch's pg_prepared_xacts row; a DBA rollback shows", async () => {
    const t = await preparedTransfer(client, accounts, 1, 5);
    const view = await adminView(node, t.xid, true);
    assert.ok(view?.participants, "the GET answers participant views");
    assert.deepEqual(
      view.participants.map((p) => [p.branch, p.participant, p.view?.holds]),
      [
        [1, "pg-a", "prepared"],
        [2, "pg-b", "prepared"],
      ],
    );
    for (const p of view.participants) {
      assert.ok(p.view?.kind === "postgres" && p.view.prepared, p.error);
      assert.equal(p.view.prepared.database, p.participant === "pg-a" ? "verdict_a" : "verdict_b");
      assert.ok(p.view.locks.relations.includes(accounts.table));
    }

    const gidA = view.branches[0]!.branchId;
    await dbaRollback("pg-a", gidA);
    const after = await adminView(node, t.xid, true);
    assert.equal(after?.branches[0]?.state, "prepared", "Verdict still believes it prepared");
    assert.equal(after?.participants?.[0]?.view?.holds, "absent", "PostgreSQL holds nothing");
    assert.equal(after?.participants?.[1]?.view?.holds, "prepared");
    await client.abort(t.xid);
  });

  test("the participants listing explains each prepared branch, or not (an orphan)", async () => {
    const t = await preparedTransfer(client, accounts, 1, 1);
    const orphan = `${node.node.clusterId}:0000orphan${Date.now()}:1`;
    const c = new pg.Client({ connectionString: services.pgUrlA });
    await c.connect();
    try {
      await c.query("begin");
      await c.query("select 1");
      await c.query(`prepare transaction '${orphan}'`);
      const answer = await raw(node.url, "GET", "/admin/v1/participants", {
        token: node.adminToken,
      });
      assert.equal(answer.status, 200, answer.text);
      const pgA = (answer.body as ParticipantsResponse).participants.find((p) => p.name === "pg-a");
      const mine = pgA?.prepared.find((p) => p.xid === t.xid);
      assert.deepEqual(
        mine && [mine.explained, mine.state, mine.preparedAt !== null, mine.ageMs !== null],
        [true, "prepared", true, true],
      );
      const lost = pgA?.prepared.find((p) => p.branchId === orphan);
      assert.ok(lost, "the orphan is listed");
      assert.equal(lost.explained, false);
      assert.equal(lost.xid, null);
      assert.ok(lost.ageMs !== null && lost.ageMs < 60_000);
    } finally {
      await c.query(`rollback prepared '${orphan}'`).catch(() => undefined);
      await c.end();
      await client.abort(t.xid);
    }
  });
});
