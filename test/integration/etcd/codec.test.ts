/**
 * Proves (pure, no etcd) the batch codec and the replay's contiguity rule:
 * - a batch round-trips, its header is the documented bytes, and any flipped byte, a
 *   truncation or an unknown version is "invalid" (never a wrong batch);
 * - entries after a snapshot must be contiguous: a hole or an overlap is LogGapError; a
 *   batch wholly covered by the snapshot is skipped; one straddling it is kept.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { decodeBatch, encodeBatch, type Batch } from "../../../coordinator/log/etcd/batch-codec.js";
import { LogGapError } from "../../../coordinator/log/etcd/errors.js";
import { contiguousAfter } from "../../../coordinator/log/etcd/replay.js";

const batch = (firstIndex: number, count: number, term = 7): Batch => ({
  term,
  firstIndex,
  payloads: Array.from({ length: count }, (_, i) => Buffer.from(`r${firstIndex + i}`)),
});

describe("etcd batch codec", () => {
  test("round-trips and writes the documented header", () => {
    const bytes = encodeBatch(batch(5, 2, 2 ** 40));
    assert.equal(bytes.readUInt8(4), 1, "format version");
    assert.equal(bytes.readUInt8(5), 1, "kind batch");
    assert.equal(bytes.readBigUInt64LE(8), 2n ** 40n, "64-bit term");
    assert.equal(bytes.readBigUInt64LE(16), 5n, "first index");
    assert.equal(bytes.readUInt32LE(24), 2, "record count");
    assert.equal(bytes.length, 28 + 2 * (4 + 2));
    const decoded = decodeBatch(bytes);
    assert.equal(decoded.status, "ok");
    if (decoded.status !== "ok") return;
    assert.equal(decoded.batch.term, 2 ** 40);
    assert.deepEqual(
      decoded.batch.payloads.map((p) => Buffer.from(p).toString()),
      ["r5", "r6"],
    );
  });

  test("every flipped byte and every truncation is refused", () => {
    const bytes = encodeBatch(batch(1, 3));
    for (let i = 0; i < bytes.length; i++) {
      const damaged = Buffer.from(bytes);
      damaged[i] = (damaged[i] ?? 0) ^ 0x01;
      assert.equal(decodeBatch(damaged).status, "invalid", `byte ${i}`);
      assert.equal(decodeBatch(bytes.subarray(0, i)).status, "invalid", `cut at ${i}`);
    }
  });
});

describe("replay contiguity", () => {
  test("contiguous batches after the snapshot are kept, covered ones skipped", () => {
    const kept = contiguousAfter(4, [batch(1, 2), batch(3, 3), batch(6, 1), batch(7, 2)]);
    assert.deepEqual(
      kept.map((b) => b.firstIndex),
      [3, 6, 7],
      "1-2 covered; 3-5 straddles the snapshot at 4",
    );
  });

  test("a hole or an overlap refuses the log", () => {
    assert.throws(() => contiguousAfter(0, [batch(1, 2), batch(4, 1)]), LogGapError);
    assert.throws(() => contiguousAfter(0, [batch(1, 2), batch(2, 1)]), LogGapError);
    assert.throws(() => contiguousAfter(3, [batch(5, 1)]), LogGapError);
  });
});
