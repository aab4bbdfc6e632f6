/**
 * Proves that the per-transaction linearizability check (Porcupine over the model in
 * scripts/linearizability/) accepts the histories a correct coordinator can produce — a read
 * overlapping a commit seeing it preparing, a timed-out commit later read either way, an
 * active transaction aborted by its deadline — and rejects known-bad ones: a split outcome, a
 * decision read back as undecided, a commit read before it was called, a commit answered
 * after a read saw the abort, an abort answered committed while nothing committed it.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { HistoryOp, OpKind, OpOutput } from "./history.js";
import { checkLinearizable } from "./linearizability.js";

/** `[kind, output, call, return]`, one transaction "x"; return null: never answered. */
type Row = readonly [OpKind, OpOutput, number, number | null, number?];

function history(...rows: Row[]): HistoryOp[] {
  return rows.map(([kind, output, call, ret, client = 0]) =>
    ret === null
      ? { client, xid: "x", kind, output, call }
      : { client, xid: "x", kind, output, call, return: ret },
  );
}

const begun: Row = ["begin", "ok", 0, 1];

describe("per-transaction linearizability check", () => {
  test("accepts what a correct coordinator can answer", () => {
    const good: Row[][] = [
      [
        begun,
        ["commit", "committed", 2, 10],
        ["status", "preparing", 3, 4, 1],
        ["status", "committed", 11, 12, 1],
      ],
      [begun, ["commit", "unknown", 2, null], ["status", "committed", 20, 21, 1]],
      [begun, ["commit", "unknown", 2, null], ["status", "aborted", 20, 21, 1]],
      [begun, ["status", "aborted", 5, 6, 1], ["commit", "aborted", 7, 8]],
      [
        begun,
        ["status", "active", 2, 3, 1],
        ["rollback", "aborted", 4, 5],
        ["status", "aborted", 6, 7, 1],
      ],
      // Concurrent: a read of committed overlapping the commit call.
      [begun, ["commit", "committed", 2, 10], ["status", "committed", 3, 4, 1]],
    ];
    for (const rows of good) {
      const r = checkLinearizable(history(...rows));
      assert.ok(r.ok, JSON.stringify(rows));
    }
  });

  test("rejects split outcomes, regressions and decisions before their call", () => {
    const bad: [string, Row[]][] = [
      [
        "split: told committed, read aborted",
        [begun, ["commit", "committed", 2, 3], ["status", "aborted", 4, 5, 1]],
      ],
      [
        "split: read aborted, then told committed",
        [begun, ["status", "aborted", 2, 3, 1], ["commit", "committed", 4, 5]],
      ],
      [
        "regression: committed read back as preparing",
        [begun, ["commit", "committed", 2, 3], ["status", "preparing", 4, 5, 1]],
      ],
      [
        "regression: aborted read back as active",
        [begun, ["status", "aborted", 2, 3, 1], ["status", "active", 4, 5, 1]],
      ],
      [
        "committed before any commit call",
        [begun, ["status", "committed", 2, 3, 1], ["commit", "committed", 4, 5]],
      ],
      [
        "two reads disagree on the decision",
        [
          begun,
          ["commit", "unknown", 2, null],
          ["status", "committed", 3, 4, 1],
          ["status", "aborted", 5, 6, 2],
        ],
      ],
      ["a rollback answered committed with no commit", [begun, ["rollback", "committed", 2, 3]]],
    ];
    for (const [why, rows] of bad) {
      const r = checkLinearizable(history(...rows));
      assert.equal(r.ok, false, why);
      assert.deepEqual(
        r.failures.map((f) => f.xid),
        ["x"],
        why,
      );
    }
  });

  test("checks each transaction apart and names the bad one", () => {
    const ok = history(begun, ["commit", "committed", 2, 3]);
    const bad = history(begun, ["commit", "committed", 2, 3], ["status", "aborted", 4, 5]).map(
      (op) => ({ ...op, xid: "y" }),
    );
    const r = checkLinearizable([...ok, ...bad]);
    assert.equal(r.transactions, 2);
    assert.deepEqual(
      r.failures.map((f) => f.xid),
      ["y"],
    );
  });
});
