/**
 * The read model: what clients and operators see of transactions — the applied table, with
 * what only the leader knows (live transactions, votes, phase-2 attempts) laid over it.
 *
 * Reads are inputs like the writes (`answerRead`), answered in order with them by a leader
 * that has caught up. The admin list walks ordered indexes — the replica's (replica.ts) and
 * the leader's overlay, kept here by `relist` — from the cursor on, so a page costs its own
 * length and a binary search, never the whole table.
 */
import { inFlight } from "./client-begin.js";
import type { Xid } from "./ids.js";
import type { AdminFacts, CallError, ListQuery, ReadInput, Reply } from "./inputs.js";
import type { Leader } from "./leader.js";
import { mergeInOrder, type ListKey } from "./ordered-xids.js";
import { stateOf } from "./phase.js";
import type { Replica } from "./replica.js";
import { errorReply, forbidden, notFound, txnReply } from "./replies.js";
import { isInDoubt } from "./txn.js";
import { viewOfDurable, type TxnView } from "./view.js";

/** What a read sees: the replica, and the leader's overlay while it serves. */
export interface ReadSource {
  readonly replica: Replica;
  readonly leader: Leader | undefined;
}

export function viewOf(src: ReadSource, xid: Xid): TxnView | undefined {
  if (src.leader) return src.leader.view(xid);
  const t = src.replica.table.get(xid);
  return t && viewOfDurable(t);
}

/** What an operator sees of one transaction: its view, owner, history and retry counts. */
export function factsOf(src: ReadSource, xid: Xid): AdminFacts | undefined {
  const view = viewOf(src, xid);
  const live = src.leader?.live.get(xid);
  const t = src.replica.table.get(xid);
  const header = live?.header ?? t?.header;
  if (!view || !header) return undefined;
  const attempts = new Map<number, number>();
  const lastErrors = new Map<number, CallError>();
  if (live?.phase.kind === "phase2") {
    for (const [n, track] of live.phase.tracks) {
      attempts.set(n, track.attempt);
      if (track.lastError !== undefined) lastErrors.set(n, track.lastError);
    }
  }
  return {
    view,
    principal: header.principal,
    beganAtMs: header.beganAtMs,
    inDoubt: isInDoubt(view.state),
    history: t?.history ?? [],
    attempts,
    lastErrors,
  };
}

/** Answers a read; `l` leads and has caught up. */
export function answerRead(l: Leader, input: ReadInput): void {
  const src = { replica: l.replica, leader: l };
  if (input.type !== "view" && !input.principal.admin) {
    return l.reply(input.req, errorReply("forbidden", "this read needs an admin token"));
  }
  if (input.type === "admin-list") return l.reply(input.req, page(l, input.query));
  const facts = factsOf(src, input.xid);
  if (!facts) return l.reply(input.req, notFound(input.xid));
  if (input.type === "admin-facts") return l.reply(input.req, { kind: "facts", facts });
  // A client reads only what it began; an admin reads any.
  if (!input.principal.admin && facts.principal !== input.principal.id) {
    return l.reply(input.req, forbidden(input.xid));
  }
  l.reply(input.req, txnReply(facts.view));
}

/**
 * Files what changed of `xids` in the leader's overlay of the list: prepared ones (the replica
 * sees them `preparing`) and those only live (the log does not hold them yet). The walk in
 * `page` checks both again, so an entry left stale is skipped, never shown wrongly.
 */
export function relist(l: Leader, xids: Iterable<Xid>): void {
  for (const xid of xids) {
    const live = l.live.get(xid);
    const key = live && { beganAtMs: live.header.beganAtMs, xid };
    if (key && isPreparedLive(l, xid)) l.listPrepared.add(key);
    else l.listPrepared.delete(xid);
    if (key && !l.table.get(xid)) l.listLiveOnly.add(key);
    else l.listLiveOnly.delete(xid);
  }
}

const isPreparedLive = (l: Leader, xid: Xid): boolean => {
  const live = l.live.get(xid);
  return live !== undefined && stateOf(live.phase) === "prepared";
};

/** One page of the list: in doubt first, then newest first, after the query's cursor. */
function page(l: Leader, q: ListQuery): Reply {
  const src = { replica: l.replica, leader: l };
  const facts: AdminFacts[] = [];
  let lastInDoubt = false;
  for (const { key, inDoubt } of walk(l, q)) {
    const f = factsOf(src, key.xid);
    if (!f || (q.state !== undefined && f.view.state !== q.state)) continue;
    if (facts.length === q.limit) {
      // One more matches: the page is full and another follows it.
      const last = facts[facts.length - 1] as AdminFacts;
      const next = { beganAtMs: last.beganAtMs, xid: last.view.xid, inDoubt: lastInDoubt };
      return { kind: "page", facts, next };
    }
    facts.push(f);
    lastInDoubt = inDoubt;
  }
  return { kind: "page", facts };
}

/**
 * The transactions of the query's parts in list order, from its cursor on: in doubt (the
 * replica's, and prepared ones only the leader knows), then the rest (the replica's the
 * leader does not hold prepared, and live ones the log does not hold yet). Each source is
 * checked again as it is walked, so the parts never share a transaction.
 */
function* walk(l: Leader, q: ListQuery): Generator<{ key: ListKey; inDoubt: boolean }> {
  const r = l.replica;
  const after = q.after;
  if (q.inDoubt !== false && (after === undefined || after.inDoubt)) {
    const prepared = only(l.listPrepared.after(after), (xid) => isPreparedLive(l, xid));
    for (const key of mergeInOrder(r.listInDoubt.after(after), prepared)) {
      yield { key, inDoubt: true };
    }
  }
  if (q.inDoubt === true) return;
  const from = after?.inDoubt === false ? after : undefined;
  const rest = only(r.listRest.after(from), (xid) => !isPreparedLive(l, xid));
  const liveOnly = only(l.listLiveOnly.after(from), (xid) => l.live.has(xid) && !r.table.get(xid));
  for (const key of mergeInOrder(rest, liveOnly)) yield { key, inDoubt: false };
}

function* only(keys: Iterable<ListKey>, keep: (xid: Xid) => boolean): Generator<ListKey> {
  for (const key of keys) if (keep(key.xid)) yield key;
}

/** Decided transactions with branches not yet acknowledged (the operator's "in doubt"). */
export function inDoubtCount(l: Leader | undefined): number {
  let n = 0;
  for (const live of l?.live.values() ?? []) {
    if (isInDoubt(stateOf(live.phase))) n += 1;
  }
  return n;
}

/** When the oldest transaction now in doubt began (undefined: none in doubt). */
export function oldestInDoubtBeganAtMs(l: Leader | undefined): number | undefined {
  let oldest: number | undefined;
  for (const live of l?.live.values() ?? []) {
    if (!isInDoubt(stateOf(live.phase))) continue;
    const began = live.header.beganAtMs;
    if (oldest === undefined || began < oldest) oldest = began;
  }
  return oldest;
}

export function inFlightCount(src: ReadSource): number {
  return src.leader ? inFlight(src.leader) : src.replica.undecided.size;
}

/**
 * Transactions a shutdown should wait for: everything this node drives, except those
 * prepared and waiting for their client — the log holds them, the next start resumes them.
 */
export function drainPending(l: Leader | undefined): number {
  let n = 0;
  for (const live of l?.live.values() ?? []) {
    if (stateOf(live.phase) !== "prepared") n += 1;
  }
  return n;
}
