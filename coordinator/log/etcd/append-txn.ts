/**
 * One append Txn: put `log/<index>` only if this node still leads (create_revision(leader) ==
 * term) and nothing landed there yet (create_revision(log/<index>) == 0), so no entry is ever
 * overwritten. When the compare fails, the failure branch reads both keys and tells why:
 *   - my bytes at log/<index>: an earlier send of this same entry landed ("landed");
 *   - `leader` gone or another term's: NotLeaderError (this node must stop appending);
 *   - still my term but other bytes there: LogConflictError (this node's view is stale).
 * Sending it again after an error is safe: it is the same entry at the same index.
 */
import type { Etcd3 } from "etcd3";
import { NotLeaderError } from "../errors.js";
import { LogConflictError } from "./errors.js";
import type { EtcdLayout } from "./layout.js";
import { leaderOf } from "./leadership.js";
import { createRevisionIs, get, put, readInFailure, revision } from "./txn.js";

export async function sendAppendTxn(
  client: Etcd3,
  layout: EtcdLayout,
  term: number,
  index: number,
  value: Buffer,
): Promise<"landed"> {
  const key = layout.logKey(index);
  const res = await client.kv.txn({
    compare: [createRevisionIs(layout.leader, term), createRevisionIs(key, 0)],
    success: [put(key, value)],
    failure: [get(layout.leader), get(key)],
  });
  if (res.succeeded) return "landed";
  const leader = readInFailure(res, 0);
  const entry = readInFailure(res, 1);
  if (entry !== undefined && entry.value.equals(value)) return "landed";
  if (leader === undefined || revision(leader.create_revision) !== term)
    throw new NotLeaderError(leaderOf(layout, leader)?.nodeId, term);
  throw new LogConflictError(index, term);
}

/** Whether log/<index> holds exactly `value` (a linearizable read). */
export async function holdsValue(
  client: Etcd3,
  layout: EtcdLayout,
  index: number,
  value: Buffer,
): Promise<boolean> {
  const res = await client.kv.range({ key: layout.logKey(index) });
  return res.kvs[0]?.value.equals(value) ?? false;
}
