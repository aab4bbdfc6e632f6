/** Small builders for the etcd Txn requests the log sends (compares and ops). */
import type { ICompare, IKeyValue, IRequestOp, ITxnResponse } from "etcd3";
import { assertLog } from "../errors.js";

/** create_revision(key) == revision; 0 means "the key does not exist". */
export function createRevisionIs(key: Buffer, revision: number): ICompare {
  return { key, target: "Create", result: "Equal", create_revision: revision };
}

/** mod_revision(key) == revision; 0 means "the key does not exist". */
export function modRevisionIs(key: Buffer, revision: number): ICompare {
  return { key, target: "Mod", result: "Equal", mod_revision: revision };
}

export function put(key: Buffer, value: Buffer, lease?: string): IRequestOp {
  return { request_put: lease === undefined ? { key, value } : { key, value, lease } };
}

export function get(key: Buffer): IRequestOp {
  return { request_range: { key } };
}

export function deleteRange(key: Buffer, rangeEnd?: Buffer): IRequestOp {
  return { request_delete_range: rangeEnd === undefined ? { key } : { key, range_end: rangeEnd } };
}

/** The single key the failure branch's n-th op (a `get`) read, if it exists. */
export function readInFailure(response: ITxnResponse, op: number): IKeyValue | undefined {
  assertLog(!response.succeeded, "readInFailure on a Txn that succeeded");
  const range = response.responses[op]?.response_range;
  assertLog(range !== undefined, `failure op ${op} is not a range`);
  return range.kvs[0];
}

/** An etcd revision as a JS number (revisions are int64; 2^53 is beyond any real cluster). */
export function revision(text: string): number {
  const n = Number(text);
  assertLog(Number.isSafeInteger(n) && n >= 0, `revision ${text} is not a safe integer`);
  return n;
}
