/**
 * The recovery decision: what to do with one branch a participant lists as prepared. Unknown
 * to the log → roll back (presumed abort); of a decided transaction but not being driven →
 * its decision again. Everything living is left alone: a transaction this leader drives, an
 * undecided one (its deadline decides it), a branch whose phase 2 is under way, and anything
 * that changed since the scan began — its lists may be stale, the next scan sees it afresh.
 */
import type { Xid } from "./ids.js";
import type { Decision } from "./records.js";
import type { TxnTable } from "./table.js";

export interface ScanContext {
  readonly table: TxnTable;
  /** The table's applied index when the participants were listed. */
  readonly startedAtIndex: number;
  /** A `forget` was applied since: an unknown transaction may be one it forgot. */
  readonly forgotSince: boolean;
  /** This leader drives it (it may not have reached the log yet). */
  readonly isLive: (xid: Xid) => boolean;
  /** A `recover` record for it is on its way to the log. */
  readonly isRecovering: (xid: Xid) => boolean;
}

/** What recovery must do with branch `n` of `xid` found prepared, or undefined to leave it. */
export function orphanAction(scan: ScanContext, xid: Xid, n: number): Decision | undefined {
  if (scan.isRecovering(xid)) return undefined;
  const t = scan.table.get(xid);
  if (!t) return scan.isLive(xid) || scan.forgotSince ? undefined : "abort";
  if (!t.decision) return undefined;
  if ((t.history.at(-1)?.index ?? 0) > scan.startedAtIndex) return undefined;
  const driven = t.branches.some((b) => b.n === n) && !t.acks.has(n);
  return driven ? undefined : t.decision.decision;
}
