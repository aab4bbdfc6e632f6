/**
 * The takeover read (docs/etcd.md, "Takeover"): the snapshot pointer, its chunks and every
 * `log/` key, all at ONE revision, read linearizably, at or after the term's start (the
 * election key's create revision), so it sees every append any earlier term made. Paginated:
 * a page holds at most `pageKeys` keys, sized so a page of the largest values stays under
 * the client's reply limit. The entries after the snapshot must be contiguous, or the node
 * refuses to lead (LogGapError). Each request is re-sent after a transient error (a read is
 * idempotent) until `stopped` says the term is over.
 */
import { createHash } from "node:crypto";
import type { Etcd3, IKeyValue } from "etcd3";
import { assertLog, type LogError } from "../errors.js";
import { decodeBatch, type Batch } from "./batch-codec.js";
import { EtcdFormatError, LogGapError } from "./errors.js";
import { prefixEnd, type EtcdLayout } from "./layout.js";
import { isCompacted, isReplyTooLarge } from "./client.js";
import { resendUntilAnswered } from "./resend.js";
import { revision } from "./txn.js";
import { decodeValue, schemas, type SnapshotPointer } from "./values.js";

export interface ReadLog {
  /** The revision everything was read at. */
  readonly revision: number;
  readonly snapshot?: {
    readonly pointer: SnapshotPointer;
    readonly modRevision: number;
    readonly data: Buffer;
  };
  /** The batches after the snapshot, contiguous; the first may start at or before it. */
  readonly batches: readonly Batch[];
}

/** How many times a replay restarts when compaction overtook its revision. */
const COMPACTED_RESTARTS_MAX = 3;

export async function readLog(
  client: Etcd3,
  layout: EtcdLayout,
  term: number,
  page: { readonly pageKeys: number; readonly replyBytesMax: number },
  stopped: () => LogError | undefined,
): Promise<ReadLog> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await readLogOnce({ client, ...page, stopped }, layout, term);
    } catch (err) {
      if (!isCompacted(err) || attempt >= COMPACTED_RESTARTS_MAX) throw err;
    }
  }
}

/** A key's share of a reply besides its value (its key, revisions, framing), over-estimated. */
const KEY_OVERHEAD_BYTES = 256;

/** How to read: the client, keys per page, and when to give up re-sending. */
interface Reader {
  readonly client: Etcd3;
  /** Keys per page that fit the reply limit whatever the values (the first page's size). */
  readonly pageKeys: number;
  /** The client's reply limit (client.ts). */
  readonly replyBytesMax: number;
  readonly stopped: () => LogError | undefined;
}

async function readLogOnce(reader: Reader, layout: EtcdLayout, term: number): Promise<ReadLog> {
  // A linearizable read fixes the revision: everything else is read at exactly it.
  const first = await resendUntilAnswered(
    () => reader.client.kv.range({ key: layout.snapshotPointer }),
    reader.stopped,
  );
  const rev = revision(first.header.revision);
  assertLog(rev >= term, `replay revision ${rev} is before the term ${term}`);
  const pointerKv = first.kvs[0];
  const snapshot =
    pointerKv === undefined ? undefined : await readSnapshot(reader, layout, pointerKv, rev);
  const batches: Batch[] = [];
  for await (const kv of rangeAt(reader, layout.logPrefix, rev)) {
    const decoded = decodeBatch(kv.value);
    if (decoded.status !== "ok") throw new EtcdFormatError(kv.key.toString(), decoded.reason);
    if (decoded.batch.firstIndex !== layout.indexOfLogKey(kv.key))
      throw new EtcdFormatError(kv.key.toString(), "batch index differs from its key");
    assertLog(decoded.batch.term <= term, `batch of term ${decoded.batch.term} after ${term}`);
    batches.push(decoded.batch);
  }
  const base = snapshot?.pointer.index ?? 0;
  const result = { revision: rev, batches: contiguousAfter(base, batches) };
  return snapshot === undefined ? result : { ...result, snapshot };
}

/**
 * The batches holding entries after `base`, checked contiguous: the first must hold base + 1,
 * each next one must start right after the previous. A batch wholly at or before `base` (the
 * snapshot's pointer Txn deletes those, so none should remain) is skipped.
 */
export function contiguousAfter(base: number, batches: readonly Batch[]): Batch[] {
  const kept: Batch[] = [];
  let expected = base + 1;
  for (const batch of batches) {
    const last = batch.firstIndex + batch.payloads.length - 1;
    if (last <= base) continue;
    const fits = kept.length === 0 ? batch.firstIndex <= expected : batch.firstIndex === expected;
    if (!fits) throw new LogGapError(expected, batch.firstIndex);
    kept.push(batch);
    expected = last + 1;
  }
  return kept;
}

async function readSnapshot(
  reader: Reader,
  layout: EtcdLayout,
  kv: IKeyValue,
  rev: number,
): Promise<NonNullable<ReadLog["snapshot"]>> {
  const pointer = decodeValue(schemas.pointer, layout.snapshotPointer, kv.value);
  const chunks: Buffer[] = [];
  for await (const chunk of rangeAt(reader, layout.snapshotChunksPrefix(pointer.index), rev))
    chunks.push(chunk.value);
  const data = Buffer.concat(chunks);
  const sha256 = createHash("sha256").update(data).digest("hex");
  if (
    chunks.length !== pointer.chunks ||
    data.length !== pointer.bytes ||
    sha256 !== pointer.sha256
  )
    throw new EtcdFormatError(
      layout.snapshotPointer.toString(),
      "snapshot chunks do not match the pointer",
    );
  return { pointer, modRevision: revision(kv.mod_revision), data };
}

/**
 * The most keys one replay page asks for. A page starts at `pageKeys` (it fits the reply limit
 * even if every value is the largest a batch can be), and grows while the values seen stay
 * small: a log of small batches (one entry each at light load) is read in a few round trips
 * instead of one per `pageKeys` keys. A page that still outgrows the reply limit (larger
 * values after small ones) is refused by the client and read again with half the keys, down
 * to `pageKeys`. The cap bounds what etcd builds for such a refused page.
 */
export const REPLAY_PAGE_KEYS_MAX = 1024;

/** Every key under `prefix` at revision `rev`, in key order, paginated as above. */
async function* rangeAt(reader: Reader, prefix: Buffer, rev: number): AsyncGenerator<IKeyValue> {
  const end = prefixEnd(prefix);
  let from = prefix;
  let limit = reader.pageKeys;
  let valueBytesMax = 0;
  for (;;) {
    let res;
    try {
      res = await resendUntilAnswered(
        () => reader.client.kv.range({ key: from, range_end: end, revision: rev, limit }),
        reader.stopped,
        isReplyTooLarge,
      );
    } catch (err) {
      if (!isReplyTooLarge(err) || limit <= reader.pageKeys) throw err;
      limit = Math.max(reader.pageKeys, Math.floor(limit / 2));
      continue;
    }
    yield* res.kvs;
    const last = res.kvs.at(-1);
    if (!res.more || last === undefined) return;
    from = Buffer.concat([last.key, Buffer.from([0])]);
    for (const kv of res.kvs) valueBytesMax = Math.max(valueBytesMax, kv.value.length);
    limit = nextPageKeys(reader, limit, valueBytesMax);
  }
}

/** Twice the keys while twice the page of the largest value seen would fit half the reply limit. */
function nextPageKeys(reader: Reader, limit: number, valueBytesMax: number): number {
  const fits = Math.floor(reader.replyBytesMax / 2 / (valueBytesMax + KEY_OVERHEAD_BYTES));
  return Math.max(reader.pageKeys, Math.min(REPLAY_PAGE_KEYS_MAX, 2 * limit, fits));
}
