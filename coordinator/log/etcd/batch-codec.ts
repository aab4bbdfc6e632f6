/**
 * The value of one `log/<index>` key: a batch of consecutive records, framed like the WAL's
 * records (record-codec.ts: CRC-32 first, a format version, little-endian), but with a 64-bit
 * term, because here a term is an etcd revision, which outgrows 32 bits. Pure: no I/O.
 *
 *   offset  size  field
 *        0     4  crc32 (IEEE, node:zlib) of bytes [4, end)
 *        4     1  format version (1)
 *        5     1  kind (1 batch)
 *        6     2  reserved, zero
 *        8     8  term (uint64, at most 2^53 - 1)
 *       16     8  first index (uint64, at most 2^53 - 1)
 *       24     4  record count (at least 1)
 *       28        per record: payload bytes (uint32), then the payload
 */
import { crc32 } from "node:zlib";
import { assertLog } from "../errors.js";

export const BATCH_FORMAT_VERSION = 1;
const KIND_BATCH = 1;
const HEADER_BYTES = 28;
const RECORD_HEADER_BYTES = 4;

export interface Batch {
  readonly term: number;
  readonly firstIndex: number;
  readonly payloads: readonly Uint8Array[];
}

export type BatchDecodeResult =
  | { readonly status: "ok"; readonly batch: Batch }
  | { readonly status: "invalid"; readonly reason: string };

/** Bytes a batch of these payloads takes. */
export function batchBytes(payloadBytes: readonly number[]): number {
  return payloadBytes.reduce((sum, n) => sum + RECORD_HEADER_BYTES + n, HEADER_BYTES);
}

/** Bytes one more record adds to a batch. */
export function recordBytesInBatch(payloadBytes: number): number {
  return RECORD_HEADER_BYTES + payloadBytes;
}

export const BATCH_HEADER_BYTES = HEADER_BYTES;

export function encodeBatch(batch: Batch): Buffer {
  assertLog(batch.payloads.length > 0, "a batch holds at least one record");
  assertLog(Number.isSafeInteger(batch.term) && batch.term > 0, `bad term ${batch.term}`);
  assertLog(
    Number.isSafeInteger(batch.firstIndex) && batch.firstIndex > 0,
    `bad index ${batch.firstIndex}`,
  );
  const out = Buffer.alloc(batchBytes(batch.payloads.map((p) => p.byteLength)));
  out.writeUInt8(BATCH_FORMAT_VERSION, 4);
  out.writeUInt8(KIND_BATCH, 5);
  out.writeBigUInt64LE(BigInt(batch.term), 8);
  out.writeBigUInt64LE(BigInt(batch.firstIndex), 16);
  out.writeUInt32LE(batch.payloads.length, 24);
  let offset = HEADER_BYTES;
  for (const payload of batch.payloads) {
    out.writeUInt32LE(payload.byteLength, offset);
    out.set(payload, offset + RECORD_HEADER_BYTES);
    offset += RECORD_HEADER_BYTES + payload.byteLength;
  }
  out.writeUInt32LE(crc32(out.subarray(4)), 0);
  // Assert in pairs: what is about to be written must read back as what was meant.
  const check = decodeBatch(out);
  assertLog(
    check.status === "ok" &&
      check.batch.firstIndex === batch.firstIndex &&
      check.batch.payloads.length === batch.payloads.length,
    "encoded batch does not decode to itself",
  );
  return out;
}

/** Reads a batch; "invalid" (with the reason) for a damaged value or an unknown version. */
export function decodeBatch(bytes: Uint8Array): BatchDecodeResult {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < HEADER_BYTES) return { status: "invalid", reason: "shorter than the header" };
  if (crc32(buf.subarray(4)) !== buf.readUInt32LE(0))
    return { status: "invalid", reason: "CRC mismatch" };
  const version = buf.readUInt8(4);
  if (version !== BATCH_FORMAT_VERSION)
    return { status: "invalid", reason: `unsupported format version ${version}` };
  if (buf.readUInt8(5) !== KIND_BATCH)
    return { status: "invalid", reason: `unknown kind ${buf.readUInt8(5)}` };
  const term = buf.readBigUInt64LE(8);
  const firstIndex = buf.readBigUInt64LE(16);
  if (term > BigInt(Number.MAX_SAFE_INTEGER) || firstIndex > BigInt(Number.MAX_SAFE_INTEGER))
    return { status: "invalid", reason: "term or index over 2^53 - 1" };
  const count = buf.readUInt32LE(24);
  const payloads: Uint8Array[] = [];
  let offset = HEADER_BYTES;
  // Each record takes at least its 4-byte length, so count is bounded by the value's size.
  if (count === 0 || count > (buf.length - HEADER_BYTES) / RECORD_HEADER_BYTES)
    return { status: "invalid", reason: `bad record count ${count}` };
  for (let i = 0; i < count; i++) {
    if (offset + RECORD_HEADER_BYTES > buf.length)
      return { status: "invalid", reason: "truncated" };
    const length = buf.readUInt32LE(offset);
    const start = offset + RECORD_HEADER_BYTES;
    if (start + length > buf.length) return { status: "invalid", reason: "truncated" };
    payloads.push(buf.subarray(start, start + length));
    offset = start + length;
  }
  if (offset !== buf.length) return { status: "invalid", reason: "trailing bytes" };
  return { status: "ok", batch: { term: Number(term), firstIndex: Number(firstIndex), payloads } };
}
