/**
 * Proves group commit and the limits: appends issued while a write + fsync is in flight
 * share the next fsync (counted by the storage layer, and reported to the onFsync hook),
 * and a full queue, an oversized record or a closed log are refused at once with a
 * typed error instead of waiting.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  LogClosedError,
  LogFullError,
  RecordTooLargeError,
} from "../../../coordinator/log/errors.js";
import { LocalDecisionLog } from "../../../coordinator/log/local-decision-log.js";
import { MemoryDisk, makeEntries, openWal, walDir } from "./wal-helpers.js";

describe("WAL group commit and limits", () => {
  test("100 appends issued at once cost at most 25 file fsyncs; each resolves durable", async () => {
    const disk = new MemoryDisk();
    const fsyncs: { durationMs: number; entries: number }[] = [];
    const log = await LocalDecisionLog.open<{ n: number }>({
      storage: disk.storage(),
      dir: walDir,
      onFsync: (durationMs, entries) => fsyncs.push({ durationMs, entries }),
    });
    const before = disk.stats.fileSyncs;
    const results = await Promise.all(Array.from({ length: 100 }, (_, n) => log.append([{ n }])));
    const used = disk.stats.fileSyncs - before;
    assert.ok(used <= 25, `${used} fsyncs for 100 appends`);
    assert.deepEqual(
      results.map((r) => r.firstIndex),
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
    assert.equal(fsyncs.length, used, "the hook sees every fsync of entries");
    assert.equal(
      fsyncs.reduce((sum, f) => sum + f.entries, 0),
      100,
    );
    assert.ok(fsyncs.every((f) => f.durationMs >= 0));
    disk.crash(); // everything resolved must be on the platter
    const reopened = await LocalDecisionLog.open<{ n: number }>({
      storage: disk.storage(),
      dir: walDir,
    });
    const { entries } = await reopened.replay();
    assert.deepEqual(
      entries.map((e) => e.record.n),
      Array.from({ length: 100 }, (_, n) => n),
    );
    await reopened.close();
  });

  test("appends awaited one by one each pay their own fsync (the counter is real)", async () => {
    const disk = new MemoryDisk();
    const { wal } = await openWal(disk);
    const before = disk.stats.fileSyncs;
    for (let i = 1; i <= 10; i++) await wal.append(makeEntries(i, 1));
    assert.equal(disk.stats.fileSyncs - before, 10);
    await wal.close();
  });

  test("writeBytesMax bounds one group-commit write", async () => {
    const disk = new MemoryDisk();
    const { wal } = await openWal(disk, { writeBytesMax: 100 });
    const before = disk.stats.writes;
    await Promise.all(Array.from({ length: 20 }, (_, i) => wal.append(makeEntries(i + 1, 1))));
    // 26-byte frames, at most 3 per 100-byte write: at least 7 writes for 20 appends.
    assert.ok(disk.stats.writes - before >= 7, `${disk.stats.writes - before} writes`);
    await wal.close();
  });

  test("over pendingAppendsMax an append is refused at once with LogFullError", async () => {
    const disk = new MemoryDisk();
    const { wal } = await openWal(disk, { pendingAppendsMax: 10 });
    let resolved = 0;
    const accepted = Array.from({ length: 10 }, (_, i) =>
      wal.append(makeEntries(i + 1, 1)).then(() => (resolved += 1)),
    );
    await assert.rejects(wal.append(makeEntries(11, 1)), (error: unknown) => {
      assert.ok(error instanceof LogFullError);
      assert.equal(error.limit, "pendingAppendsMax");
      assert.equal(error.retryable, true);
      return true;
    });
    assert.equal(resolved, 0, "the refusal came before any queued append finished");
    await Promise.all(accepted);
    await wal.append(makeEntries(11, 1)); // room again: index 11 was not taken by the refusal
    assert.equal(wal.lastIndex(), 11);
    await wal.close();
  });

  test("over pendingBytesMax an append is refused with LogFullError (or RecordTooLargeError if alone)", async () => {
    const disk = new MemoryDisk();
    const { wal } = await openWal(disk, { pendingBytesMax: 60 });
    const first = wal.append(makeEntries(1, 2)); // 52 bytes of frames
    await assert.rejects(wal.append(makeEntries(3, 1)), LogFullError);
    await first;
    // An append that alone is over the limit could never fit: not retryable.
    await assert.rejects(wal.append(makeEntries(3, 3)), RecordTooLargeError);
    await wal.close();
  });

  test("a record over recordBytesMax is refused; a closed log refuses everything", async () => {
    const disk = new MemoryDisk();
    const { wal } = await openWal(disk, { recordBytesMax: 8 });
    const big = { index: 1, term: 1, payload: new Uint8Array(9) };
    await assert.rejects(wal.append([big]), (error: unknown) => {
      assert.ok(error instanceof RecordTooLargeError);
      assert.equal(error.limit, "recordBytesMax");
      assert.equal(error.retryable, false);
      return true;
    });
    await wal.append(makeEntries(1, 1));
    await wal.close();
    await assert.rejects(wal.append(makeEntries(2, 1)), LogClosedError);
    await assert.rejects(wal.truncateSuffix(1), LogClosedError);
  });
});
