// Proves the leader's transaction phases (phase.ts) move exactly as documented and refuse every
// other move, against an independently written table; that `deciding` goes back only to the
// phase it left; that no move leaves `finished` or changes a decision; and that the states
// clients see (txn.ts) are mapped from phases as the API documents them.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { InvariantError } from "../../../coordinator/core/assert.js";
import type { Xid } from "../../../coordinator/core/ids.js";
import {
  enter,
  newPhase2,
  newPreparing,
  stateOf,
  type LiveTxn,
  type Phase,
  type PhaseKind,
} from "../../../coordinator/core/phase.js";
import { isDecided, isFinished, txnStates } from "../../../coordinator/core/txn.js";

/** One phase of each kind (`deciding` left `active`; the decided ones decided commit). */
function sample(kind: PhaseKind): Phase {
  switch (kind) {
    case "active":
      return { kind, payloadBytes: 0, fixed: false };
    case "preparing":
      return newPreparing();
    case "prepared":
      return { kind, votes: new Map() };
    case "deciding":
      return { kind, decision: "commit", proposal: 1, from: sample("prepared") as never };
    case "phase2":
      return newPhase2("commit", new Map());
    case "finished":
      return { kind, decision: "commit" };
  }
}

const kinds: readonly PhaseKind[] = [
  "active",
  "preparing",
  "prepared",
  "deciding",
  "phase2",
  "finished",
];

/** The naive twin: every allowed move, written out by hand. */
const allowed = new Set([
  "active→preparing",
  "active→deciding",
  "active→phase2",
  "preparing→prepared",
  "preparing→deciding",
  "preparing→phase2",
  "prepared→deciding",
  "prepared→phase2",
  "deciding→phase2",
  "phase2→finished",
]);

const txnIn = (phase: Phase): LiveTxn => ({
  header: { xid: "x1" as Xid, principal: "p", beganAtMs: 0, deadlineMs: 1, labels: {} },
  branches: [],
  prepareOnly: false,
  waiting: [],
  phase,
});

describe("transaction phases", () => {
  for (const from of kinds) {
    for (const to of kinds) {
      const ok = allowed.has(`${from}→${to}`);
      test(`${from} → ${to}: ${ok ? "allowed" : "refused"}`, () => {
        const txn = txnIn(sample(from));
        const next = sample(to);
        if (ok) {
          enter(txn, next);
          assert.equal(txn.phase, next);
        } else assert.throws(() => enter(txn, next), InvariantError);
      });
    }
  }

  test("deciding goes back to the phase it left, and to no other", () => {
    const from = newPreparing();
    const deciding: Phase = { kind: "deciding", decision: "abort", proposal: 7, from };
    assert.throws(() => enter(txnIn(deciding), newPreparing()), InvariantError);
    const txn = txnIn(deciding);
    enter(txn, from);
    assert.equal(txn.phase, from);
  });

  test("no move changes a decision", () => {
    const txn = txnIn(sample("phase2"));
    assert.throws(() => enter(txn, { kind: "finished", decision: "abort" }), InvariantError);
  });

  test("decided and finished states", () => {
    const decided = txnStates.filter(isDecided);
    assert.deepEqual(decided, ["committing", "committed", "aborting", "aborted"]);
    assert.deepEqual(txnStates.filter(isFinished), ["committed", "aborted"]);
  });

  test("the state each phase shows", () => {
    assert.deepEqual(
      kinds.map((k) => stateOf(sample(k))),
      ["active", "preparing", "prepared", "prepared", "committing", "committed"],
    );
    const abort: Phase = { kind: "finished", decision: "abort" };
    assert.equal(stateOf(abort), "aborted");
  });
});
