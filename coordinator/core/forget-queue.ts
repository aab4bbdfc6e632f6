/**
 * When a finished transaction may be forgotten: forgetting collects its participants'
 * records (markers, fences, tombstones, outcome records), which refuse a late prepare or
 * one-phase commit of its branches. A participant refuses those itself past the deadline on
 * its own clock, which may run up to `clockSkewMsMax` behind this node's: so a transaction is
 * forgotten only once the deadline has passed on every clock, and the retention time too
 * (docs/architecture.md §7.4).
 */
import type { Xid } from "./ids.js";
import type { Leader } from "./leader.js";

/** Queues `xid`, finished at `finishedAtMs`, in the order the queue is due. */
export function queueForget(l: Leader, xid: Xid, finishedAtMs: number): void {
  const deadlineMs = l.table.get(xid)?.header.deadlineMs ?? 0;
  const dueMs = Math.max(deadlineMs, finishedAtMs + l.cfg.retentionMs) + l.cfg.clockSkewMsMax;
  const q = l.forgetDue;
  // Mostly the latest due (appended); one whose deadline is later lands by binary search.
  let lo = 0;
  let hi = q.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (q[mid]!.dueMs <= dueMs) lo = mid + 1;
    else hi = mid;
  }
  q.splice(lo, 0, { xid, dueMs });
}
