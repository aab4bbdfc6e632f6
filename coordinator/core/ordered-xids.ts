/**
 * Xids kept in the admin list's order — newest first (begin time descending), then xid
 * ascending — as they come and go, so that a page starts with a binary search and costs its
 * own length, never the whole list. Stored the other way round (oldest first), so that a new
 * transaction, the newest, is appended rather than inserted.
 */
import { invariant } from "./assert.js";
import type { Xid } from "./ids.js";

/** Where a transaction sits in the list; it never changes while the transaction is known. */
export interface ListKey {
  readonly beganAtMs: number;
  readonly xid: Xid;
}

/** Negative when `a` comes before `b` in the list: newer, or as new with a smaller xid. */
export function listOrder(a: ListKey, b: ListKey): number {
  return b.beganAtMs - a.beganAtMs || (a.xid < b.xid ? -1 : a.xid > b.xid ? 1 : 0);
}

export class OrderedXids {
  /** The list order reversed: the newest transaction at the end. */
  private readonly keys: ListKey[] = [];
  private readonly members = new Map<Xid, ListKey>();

  get size(): number {
    return this.keys.length;
  }

  has(xid: Xid): boolean {
    return this.members.has(xid);
  }

  add(key: ListKey): void {
    if (this.members.has(key.xid)) return;
    this.members.set(key.xid, key);
    const i = this.position(key);
    if (i === this.keys.length) this.keys.push(key);
    else this.keys.splice(i, 0, key);
  }

  delete(xid: Xid): void {
    const key = this.members.get(xid);
    if (!key) return;
    this.members.delete(xid);
    const i = this.position(key);
    invariant(this.keys[i]?.xid === xid, `list index lost ${xid}`);
    this.keys.splice(i, 1);
  }

  /** Deletes many at once in one pass: a `forget` drops a batch of the oldest. */
  deleteAll(xids: readonly Xid[]): void {
    let dropped = 0;
    for (const xid of xids) if (this.members.delete(xid)) dropped += 1;
    if (dropped === 0) return;
    let kept = 0;
    for (const key of this.keys) if (this.members.get(key.xid) === key) this.keys[kept++] = key;
    invariant(kept === this.members.size, "list index out of step with its members");
    this.keys.length = kept;
  }

  /**
   * In list order, the keys after `after` (all of them without it). Read it to the end or
   * drop it before changing the index: it walks the index as it is.
   */
  *after(after?: ListKey): Generator<ListKey> {
    for (let i = (after ? this.position(after) : this.keys.length) - 1; i >= 0; i--) {
      yield this.keys[i] as ListKey;
    }
  }

  /** How many stored keys come after `key` in the list (its place in the reversed order). */
  private position(key: ListKey): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (listOrder(this.keys[mid] as ListKey, key) > 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Two walks in list order merged into one (each key is in at most one of them). */
export function* mergeInOrder(a: Iterator<ListKey>, b: Iterator<ListKey>): Generator<ListKey> {
  let x = a.next();
  let y = b.next();
  while (!x.done || !y.done) {
    if (y.done || (!x.done && listOrder(x.value, y.value) <= 0)) {
      yield x.value as ListKey;
      x = a.next();
    } else {
      yield y.value;
      y = b.next();
    }
  }
}
