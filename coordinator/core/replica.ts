/**
 * The replicated state: the transaction table and what is derived from it, nothing else.
 * Every node applies the same entries in the same order and reaches the same replica, leader
 * or not; what only a leader holds lives in leader.ts and is dropped with the leadership.
 */
import type { Xid } from "./ids.js";
import { OrderedXids } from "./ordered-xids.js";
import type { LogRecord } from "./records.js";
import { durableState, TxnTable, type ApplyResult, type Entry } from "./table.js";
import { isInDoubt } from "./txn.js";

export class Replica {
  /** Transactions the log holds in `preparing` without a decision. */
  readonly undecided = new Set<Xid>();
  /** The table's transactions in the admin list's order: those in doubt, and the rest. */
  readonly listInDoubt = new OrderedXids();
  readonly listRest = new OrderedXids();
  /** Index of the last `forget` applied: a scan older than it may list what it forgot. */
  private lastForget = 0;

  constructor(readonly table: TxnTable = new TxnTable()) {
    for (const t of table.all()) {
      if (!t.decision) this.undecided.add(t.header.xid);
      this.index(t.header.xid);
    }
  }

  static restore(snapshot: Uint8Array): Replica {
    return new Replica(TxnTable.restore(snapshot));
  }

  get appliedIndex(): number {
    return this.table.appliedIndex;
  }

  get lastForgetIndex(): number {
    return this.lastForget;
  }

  apply(entry: Entry): ApplyResult {
    const result = this.table.apply(entry);
    const r = entry.record;
    switch (r.type) {
      case "preparing":
        // A repeated `preparing` may land after the decision: it is not undecided again.
        if (!this.table.get(r.txn.xid)?.decision) this.undecided.add(r.txn.xid);
        break;
      case "decide":
        this.undecided.delete(r.xid);
        break;
      case "forget":
        this.lastForget = entry.index;
        break;
      case "acks":
      case "recover":
        break;
    }
    if (r.type === "forget") {
      // In one pass: a batch of the oldest (the table keeps one that recovery reopened).
      const gone = r.xids.filter((xid) => !this.table.get(xid));
      this.listInDoubt.deleteAll(gone);
      this.listRest.deleteAll(gone);
    } else for (const xid of xidsOf(r)) this.index(xid);
    return result;
  }

  /** Files `xid` under its list: in doubt, the rest, or neither once the table forgot it. */
  private index(xid: Xid): void {
    const t = this.table.get(xid);
    if (!t) {
      this.listInDoubt.delete(xid);
      this.listRest.delete(xid);
      return;
    }
    const inDoubt = isInDoubt(durableState(t));
    (inDoubt ? this.listRest : this.listInDoubt).delete(xid);
    (inDoubt ? this.listInDoubt : this.listRest).add({ beganAtMs: t.header.beganAtMs, xid });
  }
}

/** The transactions a record is about. */
export function xidsOf(r: LogRecord): readonly Xid[] {
  switch (r.type) {
    case "preparing":
      return [r.txn.xid];
    case "decide":
    case "recover":
      return [r.xid];
    case "acks":
      return [...new Set(r.acks.map((a) => a.xid))];
    case "forget":
      return r.xids;
  }
}
