/**
 * Proves segment rolling, snapshots with compaction (including a snapshot in the middle
 * of a segment, at the end of the log and past it), truncateSuffix followed by appends,
 * and that a crash or failure while a snapshot is written leaves the previous snapshot
 * in use with its temp file ignored.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { AssertionError } from "node:assert";
import { LogCorruptionError } from "../../../coordinator/log/errors.js";
import { frameBytes } from "../../../coordinator/log/record-codec.js";
import { segmentName, snapshotName } from "../../../coordinator/log/wal-files.js";
import { MemoryDisk, listWal, makeEntries, openWal, replayTexts, walDir } from "./wal-helpers.js";

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();
/** Segments of 4 records ("e1".."e9": 2-byte payloads). */
const segmentBytesMax = 4 * frameBytes(2);
const texts = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `e${from + i}`);

async function walWith(disk: MemoryDisk, count: number) {
  const opened = await openWal(disk, { segmentBytesMax });
  for (let i = 1; i <= count; i++) await opened.wal.append(makeEntries(i, 1));
  return opened.wal;
}

describe("WAL segments, snapshots, truncation", () => {
  test("segments roll at segmentBytesMax, named by first index, each creation dir-fsynced", async () => {
    const disk = new MemoryDisk();
    const { wal } = await openWal(disk, { segmentBytesMax });
    const dirSyncsBefore = disk.stats.dirSyncs;
    await wal.append(makeEntries(1, 9)); // one batch split across three segments
    assert.deepEqual(await listWal(disk), [segmentName(1), segmentName(5), segmentName(9)]);
    assert.equal(disk.stats.dirSyncs - dirSyncsBefore, 3);
    await wal.close();
    disk.crash();
    const reopened = await openWal(disk, { segmentBytesMax });
    assert.deepEqual(await replayTexts(reopened.wal), texts(1, 9));
    await reopened.wal.append(makeEntries(10, 1));
    assert.deepEqual(await listWal(disk), [segmentName(1), segmentName(5), segmentName(9)]);
    await reopened.wal.close();
  });

  test("a snapshot in the middle of a segment removes only the segments it wholly covers", async () => {
    const disk = new MemoryDisk();
    const wal = await walWith(disk, 10); // segments 1-4, 5-8, 9-10
    await wal.saveSnapshot({ index: 6, term: 1, data: utf8.encode("state@6") });
    assert.deepEqual(await listWal(disk), [segmentName(5), segmentName(9), snapshotName(6)]);
    const read = await wal.readAll();
    assert.equal(fromUtf8.decode(read.snapshot?.data), "state@6");
    assert.deepEqual(
      read.entries.map((e) => e.index),
      [7, 8, 9, 10],
    );
    await wal.append(makeEntries(11, 1));
    await wal.close();

    disk.crash();
    const reopened = await openWal(disk, { segmentBytesMax });
    assert.equal(reopened.recovery.snapshotIndex, 6);
    assert.deepEqual(await replayTexts(reopened.wal), texts(7, 11));
    assert.equal(reopened.wal.lastIndex(), 11);
    await reopened.wal.close();
  });

  test("a newer snapshot replaces the older one; one at the end of the log empties it", async () => {
    const disk = new MemoryDisk();
    const wal = await walWith(disk, 8);
    await wal.saveSnapshot({ index: 3, term: 1, data: utf8.encode("s3") });
    await wal.saveSnapshot({ index: 8, term: 1, data: utf8.encode("s8") });
    assert.deepEqual(await listWal(disk), [snapshotName(8)]);
    assert.equal(wal.lastIndex(), 8);
    await wal.append(makeEntries(9, 2));
    assert.deepEqual(await listWal(disk), [segmentName(9), snapshotName(8)]);
    await wal.close();
    disk.crash();
    const reopened = await openWal(disk, { segmentBytesMax });
    const read = await reopened.wal.readAll();
    assert.equal(fromUtf8.decode(read.snapshot?.data), "s8");
    assert.deepEqual(
      read.entries.map((e) => e.index),
      [9, 10],
    );
    await reopened.wal.close();
  });

  test("a snapshot past the last entry (Raft install) resets the log after it", async () => {
    const disk = new MemoryDisk();
    const wal = await walWith(disk, 5);
    await wal.saveSnapshot({ index: 20, term: 3, data: utf8.encode("s20") });
    assert.equal(wal.lastIndex(), 20);
    assert.equal(wal.termAt(20), 3);
    await wal.append(makeEntries(21, 2, 3));
    await wal.close();
    disk.crash();
    const reopened = await openWal(disk, { segmentBytesMax });
    assert.deepEqual(await replayTexts(reopened.wal), ["e21", "e22"]);
    assert.equal(reopened.wal.lastTerm(), 3);
    await reopened.wal.close();
  });

  test("truncateSuffix across segments, then appends continue at the cut", async () => {
    const disk = new MemoryDisk();
    const wal = await walWith(disk, 10); // segments 1-4, 5-8, 9-10
    await wal.truncateSuffix(7);
    assert.equal(wal.lastIndex(), 6);
    assert.deepEqual(await listWal(disk), [segmentName(1), segmentName(5)]);
    await wal.append(makeEntries(7, 3, 2, "x"));
    assert.deepEqual(await replayTexts(wal), [...texts(1, 6), "x7", "x8", "x9"]);
    await wal.truncateSuffix(5); // exactly at a segment's first index
    await wal.append(makeEntries(5, 1, 2, "y"));
    await wal.close();
    disk.crash();
    const reopened = await openWal(disk, { segmentBytesMax });
    assert.deepEqual(await replayTexts(reopened.wal), [...texts(1, 4), "y5"]);
    assert.equal(reopened.wal.termAt(5), 2);
    assert.equal(reopened.wal.termAt(4), 1);
    await reopened.wal.close();
  });

  test("truncateSuffix into the snapshot is an invariant violation", async () => {
    const disk = new MemoryDisk();
    const wal = await walWith(disk, 6);
    await wal.saveSnapshot({ index: 4, term: 1, data: new Uint8Array(0) });
    assert.throws(() => void wal.truncateSuffix(4), AssertionError);
    await wal.close();
  });

  test("a crash before the snapshot's rename keeps the previous snapshot", async () => {
    const disk = new MemoryDisk();
    const wal = await walWith(disk, 10);
    await wal.saveSnapshot({ index: 4, term: 1, data: utf8.encode("s4") });
    disk.setFault((op) => (op.name === "rename" ? "crash" : undefined));
    await assert.rejects(wal.saveSnapshot({ index: 9, term: 1, data: utf8.encode("s9") }));
    disk.setFault(undefined);
    const reopened = await openWal(disk, { segmentBytesMax });
    const read = await reopened.wal.readAll();
    assert.equal(fromUtf8.decode(read.snapshot?.data), "s4");
    assert.deepEqual(
      read.entries.map((e) => e.index),
      [5, 6, 7, 8, 9, 10],
    );
    await reopened.wal.close();
  });

  test("a snapshot temp file left by a failed write is ignored and removed on open", async () => {
    const disk = new MemoryDisk();
    const wal = await walWith(disk, 6);
    await wal.saveSnapshot({ index: 2, term: 1, data: utf8.encode("s2") });
    disk.setFault((op) => (op.name === "rename" ? "fail" : undefined));
    await assert.rejects(wal.saveSnapshot({ index: 5, term: 1, data: utf8.encode("s5") }));
    disk.setFault(undefined);
    await wal.close();
    const tempName = `${snapshotName(5)}.tmp`;
    assert.ok((await listWal(disk)).includes(tempName));
    disk.corruptByte(`${walDir}/${tempName}`, 25); // and torn: it must never be read as a snapshot
    const reopened = await openWal(disk, { segmentBytesMax });
    assert.deepEqual(reopened.recovery.removedFiles, [tempName]);
    assert.equal(reopened.recovery.snapshotIndex, 2);
    assert.deepEqual(await replayTexts(reopened.wal), texts(3, 6));
    await reopened.wal.close();
  });

  test("a crash between snapshot and compaction: the covered segments are removed on open", async () => {
    const disk = new MemoryDisk();
    const wal = await walWith(disk, 10);
    disk.setFault((op) => (op.name === "unlink" ? "crash" : undefined));
    await assert.rejects(wal.saveSnapshot({ index: 9, term: 1, data: utf8.encode("s9") }));
    disk.setFault(undefined);
    const reopened = await openWal(disk, { segmentBytesMax });
    assert.deepEqual(reopened.recovery.removedFiles, [segmentName(1), segmentName(5)]);
    assert.deepEqual(await replayTexts(reopened.wal), ["e10"]);
    await reopened.wal.close();
  });

  test("an unreadable snapshot whose entries were compacted refuses to open", async () => {
    const disk = new MemoryDisk();
    const wal = await walWith(disk, 10);
    await wal.saveSnapshot({ index: 9, term: 1, data: utf8.encode("s9") });
    await wal.close();
    disk.corruptByte(`${walDir}/${snapshotName(9)}`, 25);
    await assert.rejects(openWal(disk, { segmentBytesMax }), (error: unknown) => {
      assert.ok(error instanceof LogCorruptionError);
      assert.match(error.message, /segment starts at index 9, expected 1/);
      return true;
    });
  });
});
