/**
 * Whole-file reads and writes of the WAL directory: a snapshot written temp + fdatasync
 * + rename + directory fsync, a snapshot read back and checked, and the read-back of the
 * whole log (snapshot and every entry after it), each record checked again on the way in.
 */
import { LogCorruptionError, assertLog } from "./errors.js";
import { FrameKind, decodeFrame, encodeFrame } from "./record-codec.js";
import { joinPath } from "./storage.js";
import type { Storage } from "./storage.js";
import { TEMP_SUFFIX, parseSegment, snapshotName } from "./wal-files.js";
import type { SegmentState, SnapshotState } from "./wal-files.js";

export interface WalEntry {
  readonly index: number;
  readonly term: number;
  readonly payload: Uint8Array;
}

export interface WalSnapshot {
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array;
}

/** Durable once this resolves; a crash before leaves at most a temp file, which is never read. */
export async function writeSnapshotFile(
  storage: Storage,
  dir: string,
  snapshot: WalSnapshot,
): Promise<void> {
  const path = joinPath(dir, snapshotName(snapshot.index));
  const frame = encodeFrame({
    kind: FrameKind.snapshot,
    index: snapshot.index,
    term: snapshot.term,
    payload: snapshot.data,
  });
  const file = await storage.open(path + TEMP_SUFFIX, { truncate: true });
  try {
    await file.append(frame);
    await file.datasync();
  } finally {
    await file.close();
  }
  await storage.rename(path + TEMP_SUFFIX, path);
  await storage.syncDir(dir);
}

/** Reads and checks a snapshot file: its frame, or why it is unusable. */
export async function readSnapshot(
  storage: Storage,
  path: string,
  index: number,
  snapshotBytesMax: number,
): Promise<{ term: number; data: Uint8Array } | { problem: string }> {
  const result = decodeFrame(await storage.readFile(path), 0, snapshotBytesMax);
  if (result.status !== "ok")
    return { problem: result.status === "invalid" ? result.reason : "incomplete" };
  const { frame } = result;
  if (frame.kind !== FrameKind.snapshot || frame.index !== index) {
    return { problem: `holds kind ${frame.kind} index ${frame.index}, named for ${index}` };
  }
  return { term: frame.term, data: frame.payload };
}

/** The snapshot and every entry after it, from files the WAL knows to be whole. */
export async function readWal(
  storage: Storage,
  dir: string,
  snapshot: SnapshotState | undefined,
  segments: readonly SegmentState[],
  limits: { readonly recordBytesMax: number; readonly snapshotBytesMax: number },
): Promise<{ snapshot: WalSnapshot | undefined; entries: WalEntry[] }> {
  let read: WalSnapshot | undefined;
  if (snapshot !== undefined) {
    const path = joinPath(dir, snapshot.name);
    const file = await readSnapshot(storage, path, snapshot.index, limits.snapshotBytesMax);
    if ("problem" in file) throw new LogCorruptionError(path, 0, file.problem);
    read = { index: snapshot.index, term: file.term, data: file.data };
  }
  const base = snapshot?.index ?? 0;
  const entries: WalEntry[] = [];
  for (const segment of segments) {
    const path = joinPath(dir, segment.name);
    const bytes = (await storage.readFile(path)).subarray(0, segment.sizeBytes);
    const parse = parseSegment(bytes, segment.firstIndex, 0, limits.recordBytesMax, (frame) => {
      if (frame.index > base)
        entries.push({ index: frame.index, term: frame.term, payload: frame.payload });
    });
    if (parse.problem !== undefined)
      throw new LogCorruptionError(path, parse.validBytes, parse.problem.reason);
    assertLog(
      parse.lastIndex === segment.lastIndex,
      `segment ${segment.name} ends at ${parse.lastIndex}`,
    );
  }
  return { snapshot: read, entries };
}
