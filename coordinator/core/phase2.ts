/**
 * Phase 2: carry out the applied decision on every branch not yet acknowledged, answer the
 * waiting calls once every call returned, batch the acknowledgements into `acks` records
 * (never awaited by a client), and finish the transaction once all are in the log.
 * G1: nothing here runs before the decision is applied (startPhase2 asserts it).
 */
import type { Phase2Outcome } from "../../participants/participant.js";
import { fixedLimits, responseLimits } from "../config/limits.js";
import { invariant } from "./assert.js";
import type { BranchNo, Xid } from "./ids.js";
import type { CallError } from "./inputs.js";
import type { Ack } from "./records.js";
import type { Leader } from "./leader.js";
import { enter, phase2Heard, withHeard, type LiveTxn, type Phase2 } from "./phase.js";
import { queueForget } from "./forget-queue.js";
import { firstTrack, isDue, retryLater } from "./phase2-retry.js";
import type { ParticipantKind } from "../../participants/participant.js";
import { alreadyCommitted, txnReply } from "./replies.js";
import { durableState, type DurableTxn } from "./table.js";
import { viewOfDurable } from "./view.js";

const kafkaLast = (kind: ParticipantKind): number => (kind === "kafka" ? 1 : 0);

/** The decision of `live` is applied: track every unacknowledged branch and send what is due. */
export function startPhase2(l: Leader, live: LiveTxn): void {
  const t = l.table.get(live.header.xid);
  invariant(t?.decision !== undefined, `phase 2 of ${live.header.xid} before its decision`);
  l.enterPhase2(live, t);
  const phase = live.phase;
  if (phase.kind === "phase2") {
    for (const b of t.branches) {
      if (t.acks.has(b.n) || phase.tracks.has(b.n)) continue;
      phase.tracks.set(b.n, firstTrack(l.nowMs));
    }
  }
  maybeFinished(l, live.header.xid);
  sendDuePhase2(l, live);
}

export function sendDuePhase2(l: Leader, live: LiveTxn): void {
  const phase = live.phase;
  const t = l.table.get(live.header.xid);
  if (phase.kind !== "phase2" || !t) return;
  invariant(t.decision !== undefined, "phase 2 without a decision");
  const commit = t.decision.decision === "commit";
  // Commit databases first, Kafka after they acknowledge: an event is never visible
  // before the rows it announces.
  const dbPending = t.branches.some(
    (b) => b.kind !== "kafka" && !t.acks.has(b.n) && phase.tracks.has(b.n),
  );
  for (const b of [...t.branches].sort((x, y) => kafkaLast(x.kind) - kafkaLast(y.kind))) {
    const track = phase.tracks.get(b.n);
    if (!track || !isDue(track, l.nowMs)) continue;
    if (commit && b.kind === "kafka" && dbPending) continue;
    track.inFlight = true;
    l.emit({
      type: commit ? "commit" : "rollback",
      xid: t.header.xid,
      branch: b,
      term: t.decision.term,
      decidedAtMs: t.decision.atMs,
      ...(t.decision.evidence?.[b.n] === undefined ? {} : { evidence: t.decision.evidence[b.n] }),
      ...(phase.firstCalls.delete(b.n) ? { firstCall: true } : {}),
    });
  }
}

/** The live phase-2 tracks of `xid`, if it is in phase 2 here. */
function phase2Of(l: Leader, xid: Xid): { live: LiveTxn; phase: Phase2 } | undefined {
  const live = l.live.get(xid);
  return live?.phase.kind === "phase2" ? { live, phase: live.phase } : undefined;
}

/**
 * A phase-2 call returned. Once every branch's has, the waiting calls are answered: the
 * participants have carried out the decision, so `committed` is the truth (G7) before the
 * `acks` record is durable. That record goes out in the background, batched with other
 * transactions'; if it is lost (a crash, a new leader), phase 2 is re-driven and each
 * participant answers `already-done` (G5).
 */
export function phase2Done(l: Leader, xid: Xid, n: BranchNo, outcome: Phase2Outcome): void {
  const p = phase2Of(l, xid);
  if (!p?.phase.tracks.has(n)) return;
  p.phase.tracks.delete(n);
  const ack: Ack = {
    xid,
    n,
    outcome: outcome.outcome,
    // Cut to what an answer shows, so that any one ack fits an `acks` record.
    ...("detail" in outcome
      ? { detail: outcome.detail.slice(0, responseLimits.messageCharsMax) }
      : {}),
  };
  p.phase.heard.set(n, ack);
  l.pendingAcks.push(ack);
  // A transaction's acks go in one record: hold this one while another of its calls is out
  // (its answer, done or failed, flushes them).
  if (![...p.phase.tracks.values()].some((t) => t.inFlight)) flushAcks(l);
  const t = l.table.get(xid);
  if (t && phase2Heard(p.phase)) answerWaiting(l, p.live, withHeard(t, p.phase));
  sendDuePhase2(l, p.live);
}

export function phase2Failed(l: Leader, xid: Xid, n: BranchNo, error: CallError): void {
  const p = phase2Of(l, xid);
  const track = p?.phase.tracks.get(n);
  if (!p || !track) return;
  retryLater(track, error, l.nowMs, l.cfg.phase2Backoff, l.random);
  flushAcks(l);
  if (!p.phase.stalled) {
    p.phase.stalled = true;
    // The decision is durable: tell the waiting clients `committing` rather than hold them.
    for (const w of p.live.waiting.splice(0)) l.reply(w.req, txnReply(l.liveView(p.live)));
  }
}

/** A branch settled by hand is retried no more. */
export function dropTrack(l: Leader, xid: Xid, n: number): void {
  phase2Of(l, xid)?.phase.tracks.delete(n);
}

/**
 * Proposes the acknowledgements heard so far, one `acks` record at a time, each within
 * `acksBytesPerRecordMax` (the rest go in the next record, once this one is applied).
 */
export function flushAcks(l: Leader): void {
  if (l.acksProposal !== undefined || l.pendingAcks.length === 0) return;
  const acks = l.pendingAcks.splice(
    0,
    ackBatchSize(l.pendingAcks, fixedLimits.acksBytesPerRecordMax),
  );
  l.acksProposal = l.propose({ type: "acks", v: 1, acks, atMs: l.nowMs });
}

const utf8 = new TextEncoder();

/** How many of the first `acks` fit in `bytesMax` (as JSON); at least one, so each is logged. */
export function ackBatchSize(acks: readonly Ack[], bytesMax: number): number {
  let bytes = 0;
  let n = 0;
  for (const a of acks) {
    bytes += utf8.encode(JSON.stringify(a)).length + 1;
    if (n > 0 && bytes > bytesMax) break;
    n += 1;
  }
  return n;
}

/** Every branch of `xid` is acknowledged in the log: answer its callers and let it go. */
export function maybeFinished(l: Leader, xid: Xid): void {
  const live = l.live.get(xid);
  const t = l.table.get(xid);
  if (!live || !t) return;
  const state = durableState(t);
  if (state !== "committed" && state !== "aborted") return;
  if (live.phase.kind !== "finished") {
    enter(live, { kind: "finished", decision: state === "committed" ? "commit" : "abort" });
  }
  answerWaiting(l, live, t);
  l.live.delete(xid);
  queueForget(l, xid, l.nowMs);
}

export function answerWaiting(l: Leader, live: LiveTxn, t: DurableTxn): void {
  for (const w of live.waiting.splice(0)) {
    if (w.type === "abort" && t.decision?.decision === "commit") {
      l.reply(w.req, alreadyCommitted(t.header.xid));
    } else l.reply(w.req, txnReply(viewOfDurable(t)));
  }
}
