/**
 * Proves how opening treats damage: a torn final write (incomplete record, or a bad CRC
 * with nothing valid after it) is cut, durably, and reported, and a second open is
 * clean; damage with valid records after it, or in a non-final segment, refuses to open
 * with a LogCorruptionError naming the file and byte offset.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { LogCorruptionError } from "../../../coordinator/log/errors.js";
import { crc32 } from "node:zlib";
import {
  FRAME_HEADER_BYTES,
  FrameKind,
  encodeFrame,
  frameBytes,
} from "../../../coordinator/log/record-codec.js";
import { segmentName } from "../../../coordinator/log/wal-files.js";
import { MemoryDisk, listWal, makeEntries, openWal, replayTexts, walDir } from "./wal-helpers.js";

/** Frame size of entries 1..9 ("e1".."e9", 2 bytes of payload each). */
const smallFrameBytes = frameBytes(2);
const firstSegment = `${walDir}/${segmentName(1)}`;

async function diskWithEntries(count: number, segmentBytesMax?: number): Promise<MemoryDisk> {
  const disk = new MemoryDisk(() => 0.5);
  const { wal } = await openWal(disk, segmentBytesMax === undefined ? {} : { segmentBytesMax });
  for (let i = 1; i <= count; i++) await wal.append(makeEntries(i, 1));
  await wal.close();
  return disk;
}

describe("WAL recovery", () => {
  test("a torn last write (incomplete record) is cut durably and reported; the next open is clean", async () => {
    const disk = await diskWithEntries(5);
    const { wal } = await openWal(disk);
    disk.setFault((op) => (op.name === "datasync" ? "crash-torn" : undefined));
    await assert.rejects(wal.append(makeEntries(6, 1)));
    disk.setFault(undefined);
    const tornBytes = disk.fileBytes(firstSegment)?.byteLength ?? 0;
    assert.equal(
      tornBytes,
      5 * smallFrameBytes + Math.floor(smallFrameBytes / 2),
      "half the record survived",
    );

    const reopened = await openWal(disk);
    assert.deepEqual(reopened.recovery.truncatedTail, {
      file: firstSegment,
      offsetBytes: 5 * smallFrameBytes,
      bytesCut: Math.floor(smallFrameBytes / 2),
      reason: "incomplete record",
    });
    assert.deepEqual(await replayTexts(reopened.wal), ["e1", "e2", "e3", "e4", "e5"]);
    await reopened.wal.close();

    disk.crash(); // the cut itself was synced
    const again = await openWal(disk);
    assert.equal(again.recovery.truncatedTail, undefined);
    await again.wal.append(makeEntries(6, 1));
    assert.deepEqual(await replayTexts(again.wal), ["e1", "e2", "e3", "e4", "e5", "e6"]);
    await again.wal.close();
  });

  test("a bad CRC in the last record, nothing valid after it, is a torn tail", async () => {
    const disk = await diskWithEntries(5);
    disk.corruptByte(firstSegment, 5 * smallFrameBytes - 1);
    const { wal, recovery } = await openWal(disk);
    assert.equal(recovery.truncatedTail?.offsetBytes, 4 * smallFrameBytes);
    assert.equal(recovery.truncatedTail?.reason, "CRC mismatch");
    assert.deepEqual(await replayTexts(wal), ["e1", "e2", "e3", "e4"]);
    await wal.close();
  });

  test("a damaged byte with valid records after it refuses to open, naming file and offset", async () => {
    const disk = await diskWithEntries(9);
    const damagedAt = 3 * smallFrameBytes; // record 4
    disk.corruptByte(firstSegment, damagedAt + FRAME_HEADER_BYTES);
    await assert.rejects(openWal(disk), (error: unknown) => {
      assert.ok(error instanceof LogCorruptionError);
      assert.equal(error.file, firstSegment);
      assert.equal(error.offsetBytes, damagedAt);
      assert.match(
        error.message,
        new RegExp(`${firstSegment} at byte offset ${damagedAt}: CRC mismatch`),
      );
      assert.match(error.message, /a valid record follows at offset/);
      return true;
    });
    assert.equal(disk.fileBytes(firstSegment)?.byteLength, 9 * smallFrameBytes, "nothing was cut");
  });

  test("a damaged length field in the middle (record looks incomplete) also refuses to open", async () => {
    const disk = await diskWithEntries(9);
    disk.corruptByte(firstSegment, 2 * smallFrameBytes + 7, 0x40); // high byte of record 3's length
    await assert.rejects(openWal(disk), (error: unknown) => {
      assert.ok(error instanceof LogCorruptionError);
      assert.equal(error.offsetBytes, 2 * smallFrameBytes);
      return true;
    });
  });

  test("damage at the end of a non-final segment refuses to open", async () => {
    const disk = await diskWithEntries(9, 3 * smallFrameBytes);
    assert.deepEqual(await listWal(disk), [segmentName(1), segmentName(4), segmentName(7)]);
    disk.corruptByte(firstSegment, 3 * smallFrameBytes - 1);
    await assert.rejects(openWal(disk), (error: unknown) => {
      assert.ok(error instanceof LogCorruptionError);
      assert.equal(error.file, firstSegment);
      assert.equal(error.offsetBytes, 2 * smallFrameBytes);
      return true;
    });
  });

  test("a missing segment (gap in indices) refuses to open", async () => {
    const disk = await diskWithEntries(9, 3 * smallFrameBytes);
    const storage = disk.storage();
    await storage.unlink(`${walDir}/${segmentName(4)}`);
    await assert.rejects(
      openWal(disk),
      /00000000000000000007\.wal at byte offset 0: segment starts at index 7, expected 4/,
    );
  });

  test("a record with a good CRC but an unknown format version refuses to open (not torn)", async () => {
    const disk = new MemoryDisk();
    const storage = disk.storage();
    await storage.mkdirp(walDir);
    const file = await storage.open(firstSegment);
    const frame = encodeFrame({
      kind: FrameKind.entry,
      index: 1,
      term: 1,
      payload: new Uint8Array(2),
    });
    frame[8] = 2; // version 2, CRC recomputed below
    new DataView(frame.buffer).setUint32(0, crc32(frame.subarray(4)), true);
    await file.append(frame);
    await file.datasync();
    await file.close();
    await assert.rejects(openWal(disk), /at byte offset 0: unsupported format version 2/);
  });
});
