/**
 * Saving a snapshot (docs/etcd.md, "Snapshots"): the chunks first, each in its own guarded Txn
 * (one chunk per request keeps every request under etcd's size limit), then ONE small Txn
 * that sets the pointer and deletes the `log/` keys it covers, comparing both leadership and
 * the pointer's mod revision as last seen. A deposed leader's late snapshot therefore fails
 * its compares and cuts nothing. Chunk sets of older snapshots are deleted afterwards.
 */
import { createHash } from "node:crypto";
import type { Etcd3 } from "etcd3";
import { LogError, NotLeaderError } from "../errors.js";
import { SnapshotConflictError } from "./errors.js";
import type { EtcdLayout } from "./layout.js";
import { leaderOf } from "./leadership.js";
import { resendUntilAnswered } from "./resend.js";
import {
  createRevisionIs,
  deleteRange,
  get,
  modRevisionIs,
  put,
  readInFailure,
  revision,
} from "./txn.js";
import { encodeValue, type SnapshotPointer } from "./values.js";

export interface SnapshotWrite {
  readonly term: number;
  /** The last index the snapshot covers, and that entry's term. */
  readonly index: number;
  readonly entryTerm: number;
  readonly data: Uint8Array;
  /** The pointer's mod revision as this node last saw it (0: no pointer). */
  readonly pointerModRevision: number;
  /** `log/` keys before this index are deleted (the first batch holding index + 1, or index + 1). */
  readonly cutBeforeIndex: number;
  readonly chunkBytesMax: number;
}

/** Resolves with the pointer's new mod revision. */
export async function writeSnapshot(
  client: Etcd3,
  layout: EtcdLayout,
  w: SnapshotWrite,
  stopped: () => LogError | undefined,
): Promise<number> {
  const data = Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength);
  const chunks = Math.max(1, Math.ceil(data.length / w.chunkBytesMax));
  for (let k = 0; k < chunks; k++) {
    const chunk = data.subarray(k * w.chunkBytesMax, (k + 1) * w.chunkBytesMax);
    await resendUntilAnswered(() => putChunk(client, layout, w, k, chunk), stopped);
  }
  const pointer: SnapshotPointer = {
    version: 1,
    index: w.index,
    term: w.entryTerm,
    chunks,
    bytes: data.length,
    sha256: createHash("sha256").update(data).digest("hex"),
  };
  const modRevision = await resendUntilAnswered(
    () => setPointer(client, layout, w, pointer),
    stopped,
  );
  // Older chunk sets sort before this one (zero-padded indices); leftovers are only garbage.
  await client.kv
    .txn({
      compare: [createRevisionIs(layout.leader, w.term)],
      success: [deleteRange(layout.snapshotChunksRoot, layout.snapshotChunksPrefix(w.index))],
    })
    .catch(() => undefined);
  return modRevision;
}

async function putChunk(
  client: Etcd3,
  layout: EtcdLayout,
  w: SnapshotWrite,
  k: number,
  chunk: Buffer,
): Promise<void> {
  const res = await client.kv.txn({
    compare: [createRevisionIs(layout.leader, w.term)],
    success: [put(layout.snapshotChunk(w.index, k), chunk)],
    failure: [get(layout.leader)],
  });
  if (!res.succeeded)
    throw new NotLeaderError(leaderOf(layout, readInFailure(res, 0))?.nodeId, w.term);
}

async function setPointer(
  client: Etcd3,
  layout: EtcdLayout,
  w: SnapshotWrite,
  pointer: SnapshotPointer,
): Promise<number> {
  const value = encodeValue(pointer);
  const res = await client.kv.txn({
    compare: [
      createRevisionIs(layout.leader, w.term),
      modRevisionIs(layout.snapshotPointer, w.pointerModRevision),
    ],
    success: [
      put(layout.snapshotPointer, value),
      deleteRange(layout.logPrefix, layout.logKey(w.cutBeforeIndex)),
    ],
    failure: [get(layout.leader), get(layout.snapshotPointer)],
  });
  if (res.succeeded) return revision(res.header.revision);
  const leader = readInFailure(res, 0);
  const current = readInFailure(res, 1);
  // An earlier send of this same pointer landed (its response was lost).
  if (current?.value.equals(value)) return revision(current.mod_revision);
  if (leader === undefined || revision(leader.create_revision) !== w.term)
    throw new NotLeaderError(leaderOf(layout, leader)?.nodeId, w.term);
  throw new SnapshotConflictError(w.index, w.pointerModRevision);
}
