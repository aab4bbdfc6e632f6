/**
 * File names of the WAL directory and the parsing of one segment. Pure: no I/O.
 *   <first index, 20 digits>.wal        a segment, named by the index of its first record
 *   snapshot-<index, 20 digits>.snap    a snapshot covering every index up to its own
 *   *.tmp                               a snapshot being written: never trusted
 */
import { FRAME_HEADER_BYTES, FrameKind, decodeFrame } from "./record-codec.js";
import type { Frame } from "./record-codec.js";

const SEGMENT_NAME = /^(\d{20})\.wal$/;
const SNAPSHOT_NAME = /^snapshot-(\d{20})\.snap$/;
export const TEMP_SUFFIX = ".tmp";

export function segmentName(firstIndex: number): string {
  return `${String(firstIndex).padStart(20, "0")}.wal`;
}

export function snapshotName(index: number): string {
  return `snapshot-${String(index).padStart(20, "0")}.snap`;
}

/** A segment as the WAL tracks it in memory. */
export interface SegmentState {
  readonly name: string;
  readonly firstIndex: number;
  /** firstIndex - 1 while empty. */
  lastIndex: number;
  sizeBytes: number;
}

/** The snapshot in use. */
export interface SnapshotState {
  readonly name: string;
  readonly index: number;
  readonly term: number;
}

export type DirEntry =
  | { readonly kind: "segment"; readonly name: string; readonly firstIndex: number }
  | { readonly kind: "snapshot"; readonly name: string; readonly index: number }
  | { readonly kind: "temp"; readonly name: string }
  | { readonly kind: "unknown"; readonly name: string };

export function classifyName(name: string): DirEntry {
  const segment = SEGMENT_NAME.exec(name)?.[1];
  if (segment !== undefined) return { kind: "segment", name, firstIndex: Number(segment) };
  const snapshot = SNAPSHOT_NAME.exec(name)?.[1];
  if (snapshot !== undefined) return { kind: "snapshot", name, index: Number(snapshot) };
  if (name.endsWith(TEMP_SUFFIX)) return { kind: "temp", name };
  return { kind: "unknown", name };
}

export interface SegmentParse {
  /** Bytes of valid records from the start. */
  readonly validBytes: number;
  /** Index of the last valid record (firstIndex - 1 when none). */
  readonly lastIndex: number;
  readonly lastTerm: number | undefined;
  /** Set when something other than valid records follows `validBytes`. */
  readonly problem?: {
    readonly reason: string;
    /** True when the bytes at the problem can be a torn write (incomplete, or bad CRC). */
    readonly mayBeTorn: boolean;
  };
}

/**
 * Reads the records of one segment in order, checking each frame (CRC, version), that
 * indices run from `firstIndex` without a gap and that terms never decrease.
 */
export function parseSegment(
  bytes: Uint8Array,
  firstIndex: number,
  termBefore: number,
  payloadBytesMax: number,
  onEntry?: (frame: Frame) => void,
): SegmentParse {
  let offset = 0;
  let expected = firstIndex;
  let lastTerm: number | undefined;
  const at = (reason: string, mayBeTorn: boolean): SegmentParse => ({
    validBytes: offset,
    lastIndex: expected - 1,
    lastTerm,
    problem: { reason, mayBeTorn },
  });
  while (offset < bytes.byteLength) {
    const result = decodeFrame(bytes, offset, payloadBytesMax);
    if (result.status === "incomplete") return at("incomplete record", true);
    if (result.status === "invalid") return at(result.reason, result.reason === "CRC mismatch");
    const { frame } = result;
    if (frame.kind !== FrameKind.entry) return at(`frame kind ${frame.kind} in a segment`, false);
    if (frame.index !== expected) return at(`index ${frame.index}, expected ${expected}`, false);
    if (frame.term < (lastTerm ?? termBefore)) {
      return at(`term ${frame.term} below the previous ${lastTerm ?? termBefore}`, false);
    }
    onEntry?.(frame);
    lastTerm = frame.term;
    expected += 1;
    offset = result.nextOffset;
  }
  return { validBytes: offset, lastIndex: expected - 1, lastTerm };
}

/**
 * Whether any valid entry frame with an index above `indexAbove` starts after `offset`.
 * Decides torn tail (nothing valid follows: safe to cut) from corruption (valid records
 * follow: cutting would lose acknowledged data). Cheap header checks filter candidates
 * before the CRC, so a scan of a whole segment stays linear.
 */
export function validFrameAfter(
  bytes: Uint8Array,
  offset: number,
  indexAbove: number,
  payloadBytesMax: number,
): number | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = offset + 1; at + FRAME_HEADER_BYTES <= bytes.byteLength; at++) {
    if (view.getUint8(at + 9) !== FrameKind.entry || view.getUint16(at + 10, true) !== 0) continue;
    const result = decodeFrame(bytes, at, payloadBytesMax);
    if (result.status === "ok" && result.frame.index > indexAbove) return at;
  }
  return undefined;
}
