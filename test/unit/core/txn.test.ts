// Proves the transaction state machine (docs/architecture.md §4) allows exactly the documented
// transitions and refuses every other one, against an independently written table.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  isDecided,
  isFinished,
  nextState,
  transition,
  txnStates,
  type TxnEvent,
  type TxnState,
} from "../../../coordinator/core/txn.js";
import { InvariantError } from "../../../coordinator/core/assert.js";

const events: readonly TxnEvent[] = [
  "preparing-written",
  "all-voted-yes",
  "commit-decided",
  "abort-decided",
  "all-acknowledged",
];

/** The naive twin: every allowed transition, written out by hand. */
const allowed: Readonly<Record<string, TxnState>> = {
  "active/preparing-written": "preparing",
  "preparing/all-voted-yes": "prepared",
  "preparing/commit-decided": "committing",
  "prepared/commit-decided": "committing",
  "active/abort-decided": "aborting",
  "preparing/abort-decided": "aborting",
  "prepared/abort-decided": "aborting",
  "committing/all-acknowledged": "committed",
  "aborting/all-acknowledged": "aborted",
};

describe("transaction states", () => {
  for (const from of txnStates) {
    for (const event of events) {
      const expected = allowed[`${from}/${event}`];
      test(`${from} --${event}--> ${expected ?? "refused"}`, () => {
        assert.equal(nextState(from, event), expected);
        if (expected) assert.equal(transition(from, event), expected);
        else assert.throws(() => transition(from, event), InvariantError);
      });
    }
  }

  test("decided and finished states", () => {
    const decided = txnStates.filter(isDecided);
    assert.deepEqual(decided, ["committing", "committed", "aborting", "aborted"]);
    assert.deepEqual(txnStates.filter(isFinished), ["committed", "aborted"]);
  });

  test("no transition leaves a finished state or reverses a decision", () => {
    for (const from of txnStates) {
      for (const event of events) {
        const to = nextState(from, event);
        if (to === undefined) continue;
        assert.ok(!isFinished(from), `${from} is finished yet moves to ${to}`);
        if (isDecided(from)) assert.equal(to.slice(0, 4), from.slice(0, 4), `${from} → ${to}`);
      }
    }
  });
});
