// Proves what an operator sees of typed errors: a no vote and a failed prepare call show their
// code (`voteCode`, and `voteReason` as `<code>: <message>`), a failed phase-2 attempt its
// message and code (`lastError`, `lastErrorCode`) — and the admin view, and the list cursor
// the node gives, pass the contract's own schemas, which refuse a cursor it never gives.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatCursor, parseCursor } from "../../../coordinator/api/contract/cursor.js";
import { defaultSchemas as s } from "../../../coordinator/api/contract/schemas.js";
import { toAdminView } from "../../../coordinator/api/views.js";
import { branchVote, failedVote, type AdminFacts } from "../../../coordinator/core/engine.js";
import type { BranchId, BranchNo, Xid } from "../../../coordinator/core/ids.js";

const xid = "0mwsrlrvof5295955e6d2fe3a7b44" as Xid;
const branch = (n: number, participant: string) => ({
  branch: n as BranchNo,
  branchId: `c1:${xid}:${n}` as BranchId,
  participant,
  kind: "postgres" as const,
});

const facts: AdminFacts = {
  view: {
    xid,
    state: "preparing",
    deadlineMs: 2_000,
    labels: {},
    branches: [
      {
        ...branch(1, "pg-a"),
        state: "preparing",
        vote: branchVote({ vote: "no", reason: "lock-conflict", detail: "row 7 is locked" }),
      },
      {
        ...branch(2, "pg-b"),
        state: "preparing",
        vote: failedVote({ code: "timeout", message: "no answer in 1000 ms", retryable: true }),
      },
      { ...branch(3, "pg-c"), state: "committing" },
    ],
  },
  principal: "svc-a",
  beganAtMs: 1_000,
  inDoubt: false,
  history: [],
  attempts: new Map([[3, 2]]),
  lastErrors: new Map([[3, { code: "connection-lost", message: "ECONNRESET", retryable: true }]]),
};

describe("the admin view of typed errors", () => {
  test("votes and phase-2 failures show their codes", () => {
    const view = toAdminView(facts);
    const [no, failed, stuck] = view.branches;
    assert.deepEqual(
      [no?.vote, no?.voteCode, no?.voteReason],
      ["no", "lock-conflict", "lock-conflict: row 7 is locked"],
    );
    assert.deepEqual(
      [failed?.vote, failed?.voteCode, failed?.voteReason],
      ["no", "timeout", "timeout: no answer in 1000 ms"],
    );
    assert.deepEqual(
      [stuck?.attempts, stuck?.lastError, stuck?.lastErrorCode, stuck?.voteCode],
      [2, "ECONNRESET", "connection-lost", undefined],
    );
    assert.deepEqual(s.adminTransactionView.parse(view), view);
  });

  test("the cursor the node gives is the one the query takes back", () => {
    const cursor = formatCursor({ inDoubt: true, beganAtMs: 1_764_950_493_117, xid });
    const page = s.adminListResponse.parse({ transactions: [], nextCursor: cursor });
    const query = s.adminListQuery.parse({ cursor: page.nextCursor });
    assert.deepEqual(query.cursor, parseCursor(cursor));
    assert.deepEqual(query.cursor, { inDoubt: true, beganAtMs: 1_764_950_493_117, xid });
    for (const bad of ["zz", "1", "2.5.x", "1.-5.x", "0.5.x:y", `1.5.${"x".repeat(65)}`]) {
      assert.equal(s.adminListQuery.safeParse({ cursor: bad }).success, false, bad);
    }
  });
});
