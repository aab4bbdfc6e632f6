// Proves that acknowledgements are logged in `acks` records of bounded size: a batch takes
// the first acks that fit `acksBytesPerRecordMax` (as UTF-8 JSON), in order, and always at
// least one (so none is stuck); a backlog at the default bound splits into records that each
// fit a record's overhead (coordinator/config/limits.ts).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { fixedLimits } from "../../../coordinator/config/limits.js";
import { ackBatchSize } from "../../../coordinator/core/phase2.js";
import type { BranchNo, Xid } from "../../../coordinator/core/ids.js";
import type { Ack } from "../../../coordinator/core/records.js";

const ack = (i: number, detail?: string): Ack => ({
  xid: `x${i}` as Xid,
  n: 1 as BranchNo,
  outcome: detail === undefined ? "done" : "heuristic-commit",
  ...(detail === undefined ? {} : { detail }),
});
const bytesOf = (a: Ack) => new TextEncoder().encode(JSON.stringify(a)).length + 1;

describe("ackBatchSize", () => {
  test("takes the acks that fit, in order", () => {
    const acks = [ack(1), ack(2), ack(3)];
    const two = bytesOf(acks[0]!) + bytesOf(acks[1]!);
    assert.equal(ackBatchSize(acks, two), 2);
    assert.equal(ackBatchSize(acks, two - 1), 1);
    assert.equal(ackBatchSize(acks, 1 << 20), 3);
  });

  test("counts UTF-8 bytes, not characters", () => {
    const wide = [ack(1, "é".repeat(100)), ack(2, "é".repeat(100))];
    const chars = JSON.stringify(wide[0]).length + JSON.stringify(wide[1]).length + 2;
    assert.equal(ackBatchSize(wide, chars), 1, "two-byte characters count twice");
  });

  test("an ack larger than the bound still goes alone", () => {
    assert.equal(ackBatchSize([ack(1, "x".repeat(100)), ack(2)], 10), 1);
  });

  test("a backlog at the default bound splits into records that each fit", () => {
    let pending = Array.from({ length: 5000 }, (_, i) => ack(i, "participant said: done"));
    let records = 0;
    while (pending.length > 0) {
      const n = ackBatchSize(pending, fixedLimits.acksBytesPerRecordMax);
      const batch = pending.slice(0, n);
      assert.ok(
        JSON.stringify({ type: "acks", v: 1, acks: batch, atMs: Date.now() }).length <=
          fixedLimits.recordOverheadBytes,
      );
      pending = pending.slice(n);
      records += 1;
    }
    assert.ok(records > 1, "a large backlog takes several records");
  });
});
