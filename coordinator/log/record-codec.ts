/**
 * The on-disk frame of every WAL record and snapshot. Pure: no I/O.
 *
 *   offset  size  field
 *        0     4  crc32 (IEEE, node:zlib) of bytes [4, end)
 *        4     4  payloadBytes
 *        8     1  format version (1)
 *        9     1  kind (1 entry, 2 snapshot)
 *       10     2  reserved, zero
 *       12     4  term (uint32)
 *       16     8  index (uint64; at most 2^53 - 1 so it fits a JS number)
 *       24     n  payload
 * Little-endian. The CRC covers the length, so a damaged length is caught too.
 * CRC choice: zlib's CRC-32 is native (Node >= 20.15, which package.json requires),
 * an order of magnitude faster than a table CRC-32C in JS, and detects every burst
 * up to 32 bits, which is what a torn or flipped sector looks like; CRC-32C's better
 * Hamming distance at large sizes matters less than speed on the fsync path here.
 */
import { crc32 } from "node:zlib";
import { assertLog } from "./errors.js";

export const FORMAT_VERSION = 1;
export const FRAME_HEADER_BYTES = 24;

export const FrameKind = { entry: 1, snapshot: 2 } as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export interface Frame {
  readonly kind: FrameKind;
  readonly index: number;
  readonly term: number;
  readonly payload: Uint8Array;
}

export type DecodeResult =
  | { readonly status: "ok"; readonly frame: Frame; readonly nextOffset: number }
  /** The bytes end before the frame does (a torn write, or a damaged length). */
  | { readonly status: "incomplete" }
  | { readonly status: "invalid"; readonly reason: string };

const TERM_MAX = 0xffff_ffff;

/** Bytes the frame of a payload of this size takes. */
export function frameBytes(payloadBytes: number): number {
  return FRAME_HEADER_BYTES + payloadBytes;
}

/** Writes `frame` into `target` at `offset`; returns the offset after it. */
export function encodeFrameInto(target: Uint8Array, offset: number, frame: Frame): number {
  assertLog(Number.isSafeInteger(frame.index) && frame.index >= 0, `bad index ${frame.index}`);
  assertLog(
    Number.isInteger(frame.term) && frame.term >= 0 && frame.term <= TERM_MAX,
    `bad term ${frame.term}`,
  );
  const end = offset + frameBytes(frame.payload.byteLength);
  assertLog(end <= target.byteLength, "frame does not fit its buffer");
  const view = new DataView(target.buffer, target.byteOffset + offset, end - offset);
  view.setUint32(4, frame.payload.byteLength, true);
  view.setUint8(8, FORMAT_VERSION);
  view.setUint8(9, frame.kind);
  view.setUint16(10, 0, true);
  view.setUint32(12, frame.term, true);
  view.setBigUint64(16, BigInt(frame.index), true);
  target.set(frame.payload, offset + FRAME_HEADER_BYTES);
  view.setUint32(0, crc32(target.subarray(offset + 4, end)), true);
  // Assert in pairs: the frame about to be written must read back as what we meant.
  const check = decodeFrame(target.subarray(0, end), offset, frame.payload.byteLength);
  assertLog(
    check.status === "ok" && check.frame.index === frame.index && check.frame.term === frame.term,
    "encoded frame does not decode to itself",
  );
  return end;
}

export function encodeFrame(frame: Frame): Uint8Array {
  const out = new Uint8Array(frameBytes(frame.payload.byteLength));
  encodeFrameInto(out, 0, frame);
  return out;
}

/**
 * Reads the frame at `offset`. A frame whose CRC matches but whose version or kind is
 * unknown is "invalid" with a reason saying so (the caller refuses it; it is not torn).
 * The payload returned is a view into `bytes`.
 */
export function decodeFrame(
  bytes: Uint8Array,
  offset: number,
  payloadBytesMax: number,
): DecodeResult {
  const available = bytes.byteLength - offset;
  if (available < FRAME_HEADER_BYTES) return { status: "incomplete" };
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, available);
  const payloadBytes = view.getUint32(4, true);
  if (payloadBytes > payloadBytesMax) {
    return {
      status: "invalid",
      reason: `length ${payloadBytes} over the maximum ${payloadBytesMax}`,
    };
  }
  const end = FRAME_HEADER_BYTES + payloadBytes;
  if (end > available) return { status: "incomplete" };
  const crc = crc32(bytes.subarray(offset + 4, offset + end));
  if (crc !== view.getUint32(0, true)) return { status: "invalid", reason: "CRC mismatch" };
  const version = view.getUint8(8);
  if (version !== FORMAT_VERSION) {
    return { status: "invalid", reason: `unsupported format version ${version}` };
  }
  const kind = view.getUint8(9);
  if (kind !== FrameKind.entry && kind !== FrameKind.snapshot) {
    return { status: "invalid", reason: `unknown frame kind ${kind}` };
  }
  const index = view.getBigUint64(16, true);
  if (index > BigInt(Number.MAX_SAFE_INTEGER)) {
    return { status: "invalid", reason: `index ${index} over 2^53 - 1` };
  }
  return {
    status: "ok",
    frame: {
      kind,
      index: Number(index),
      term: view.getUint32(12, true),
      payload: bytes.subarray(offset + FRAME_HEADER_BYTES, offset + end),
    },
    nextOffset: offset + end,
  };
}
