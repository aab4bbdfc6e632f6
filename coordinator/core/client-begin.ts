/**
 * The client calls that build a transaction before phase 1: begin, enlist, report-prepared.
 * They live only in the leader's memory until `preparing` is proposed.
 */
import { invariant } from "./assert.js";
import { branchIdOf, type BranchNo } from "./ids.js";
import type { BeginInput, EnlistInput, ReportPreparedInput, ReqId } from "./inputs.js";
import { isServicePrepared, type Leader } from "./leader.js";
import { isWork, mergeWork } from "./payload.js";
import { stateOf, type Active, type LiveTxn } from "./phase.js";
import type { BranchSpec } from "./records.js";
import { errorReply, invalidState, overLimit } from "./replies.js";

/** Transactions in flight: live on this leader, or undecided in the log. */
/** Transactions this leader drives, and undecided ones in the log it has not taken up: each once. */
export function inFlight(l: Leader): number {
  let n = l.live.size;
  for (const xid of l.replica.undecided) if (!l.live.has(xid)) n += 1;
  return n;
}

export function begin(l: Leader, input: BeginInput, draining: boolean): void {
  if (draining) {
    return l.reply(input.req, errorReply("unavailable", "the node is shutting down"));
  }
  if (l.refusedKey(input)) return;
  const prior = l.priorUse(input);
  const view = prior && l.view(prior.xid);
  if (view) return l.reply(input.req, { kind: "txn", view, created: false });
  if (inFlight(l) >= l.cfg.inFlightMax) {
    return l.reply(
      input.req,
      errorReply("too-many-transactions", `at most ${l.cfg.inFlightMax} in flight`, {
        inFlightMax: l.cfg.inFlightMax,
      }),
    );
  }
  invariant(!l.live.has(input.xid) && !l.table.get(input.xid), "xid reused");
  const live: LiveTxn = {
    header: {
      xid: input.xid,
      principal: input.principal.id,
      beganAtMs: l.nowMs,
      deadlineMs: l.nowMs + input.timeoutMs,
      labels: input.labels,
    },
    branches: [],
    prepareOnly: false,
    waiting: [],
    phase: { kind: "active", payloadBytes: 0, fixed: false },
  };
  l.live.set(input.xid, live);
  l.holdKey(input, { xid: input.xid });
  l.reply(input.req, { kind: "txn", view: l.liveView(live), created: true });
}

export function enlist(l: Leader, input: EnlistInput): void {
  const live = l.driven(input);
  if (!live || l.refusedKey(input)) return;
  // A repeat answers the branch its first call answered, even once the branches are fixed.
  const first = l.priorUse(input)?.branch;
  const keyed = first && live.branches[first.n - 1];
  if (first && keyed) return replyBranch(l, input.req, keyed.spec, first.created);
  const phase = live.phase;
  // Once `preparing` is proposed the branches are fixed: later work would never be decided.
  if (phase.kind !== "active" || phase.fixed) {
    const from = phase.kind === "deciding" ? phase.from : phase;
    const state = from.kind === "active" && from.fixed ? "preparing" : stateOf(phase);
    return l.reply(input.req, invalidState(live.header.xid, state, "enlist"));
  }
  if (phase.payloadBytes + input.payloadBytes > l.cfg.payloadBytesPerTxnMax) {
    const max = l.cfg.payloadBytesPerTxnMax;
    return l.reply(
      input.req,
      errorReply("payload-too-large", `over payloadBytesPerTransactionMax (${max})`, {
        limit: "payloadBytesPerTransactionMax",
        max,
      }),
    );
  }
  const existing = live.branches.find((b) => b.spec.participant === input.participant);
  if (existing) return mergeInto(l, live, phase, existing, input);
  if (live.branches.length >= l.cfg.branchesPerTxnMax) {
    return l.reply(input.req, overLimit("branchesPerTransactionMax", l.cfg.branchesPerTxnMax));
  }
  const n = (live.branches.length + 1) as BranchNo;
  const spec: BranchSpec = {
    n,
    branchId: branchIdOf(l.cfg.clusterId, live.header.xid, n),
    participant: input.participant,
    kind: input.kind,
    payload: input.payload,
  };
  live.branches.push({ spec, servicePrepared: isServicePrepared(input.payload) });
  phase.payloadBytes += input.payloadBytes;
  l.holdKey(input, { xid: input.xid, branch: { n, created: true } });
  replyBranch(l, input.req, spec, true);
}

/** More work for a participant the transaction already has: one branch, merged work. */
function mergeInto(
  l: Leader,
  live: LiveTxn,
  phase: Active,
  existing: LiveTxn["branches"][number],
  input: EnlistInput,
): void {
  if (existing.servicePrepared || isServicePrepared(input.payload)) {
    return l.reply(
      input.req,
      invalidState(
        live.header.xid,
        "active",
        "a service-prepared branch cannot share its participant with other work",
      ),
    );
  }
  // An active branch holds its enlists' work (recovery's orphans and released work are decided).
  const work = existing.spec.payload;
  invariant(isWork(work), `an active branch holds ${work.kind} work`);
  const merged = mergeWork(work, input.payload);
  const over = merged.ok ? l.cfg.branchWorkOverLimit(merged.work) : undefined;
  if (over) return l.reply(input.req, overLimit(over.limit, over.max));
  if (!merged.ok) return l.reply(input.req, invalidState(live.header.xid, "active", merged.why));
  existing.spec = { ...existing.spec, payload: merged.work };
  phase.payloadBytes += input.payloadBytes;
  l.holdKey(input, { xid: input.xid, branch: { n: existing.spec.n, created: false } });
  replyBranch(l, input.req, existing.spec, false);
}

export function reportPrepared(l: Leader, input: ReportPreparedInput): void {
  const live = l.driven(input);
  if (!live || l.refusedKey(input)) return;
  const b = live.branches[input.n - 1];
  const ids = { xid: input.xid, branch: input.n };
  if (!b) return l.reply(input.req, errorReply("branch-not-found", `no branch ${input.n}`, ids));
  if (!b.servicePrepared) {
    return l.reply(
      input.req,
      errorReply("invalid-state", `branch ${input.n} is not a service-prepared branch`, ids),
    );
  }
  l.holdKey(input, { xid: input.xid });
  replyBranch(l, input.req, b.spec, false);
}

function replyBranch(l: Leader, req: ReqId, spec: BranchSpec, created: boolean): void {
  l.reply(req, { kind: "branch", branch: spec.n, branchId: spec.branchId, created });
}
