/**
 * Deliberately broken engines, to show that the property checkers can fail. Each breaks one
 * guarantee the way a plausible bug would; none of this touches the real engine's code.
 */
import { Engine, type Input, type Output } from "../../../coordinator/core/engine.js";
import type { BranchId, BranchNo, Term, Xid } from "../../../coordinator/core/ids.js";
import type { Entry } from "../../../coordinator/core/table.js";
import type { TxnView } from "../../../coordinator/core/view.js";
import type { EngineFactory } from "./harness.js";

/** Breaks G1: tells participants to commit as soon as the `decide commit` append is proposed. */
class CommitBeforeDurable extends Engine {
  override handle(input: Input, nowMs: number): Output[] {
    const out = super.handle(input, nowMs);
    const early: Output[] = [];
    for (const o of out) {
      if (o.type !== "append" || o.record.type !== "decide" || o.record.decision !== "commit")
        continue;
      const xid = o.record.xid;
      const branches = this.table.get(xid)?.branches ?? o.record.branches ?? [];
      for (const branch of branches)
        early.push({ type: "commit", xid, branch, term: 0 as Term, decidedAtMs: nowMs });
    }
    return [...out, ...early];
  }
}

export const commitBeforeDurable: EngineFactory = (cfg, random) =>
  new CommitBeforeDurable(cfg, random);

/** Breaks G2: a later `decide` overwrites an earlier one instead of losing the compare-and-set. */
export const decideOverwrites: EngineFactory = (cfg, random) => {
  const engine = new Engine(cfg, random);
  const table = engine.table;
  const apply = table.apply.bind(table);
  table.apply = (entry: Entry) => {
    const r = entry.record;
    const t = r.type === "decide" ? table.get(r.xid) : undefined;
    if (t) t.decision = undefined;
    return apply(entry);
  };
  return engine;
};

/** Breaks "recovery never hurts the living": every prepared branch the log lacks is presumed aborted. */
class RecoveryIgnoresTheLiving extends Engine {
  override handle(input: Input, nowMs: number): Output[] {
    const out = super.handle(input, nowMs);
    if (input.type !== "recovered") return out;
    for (const list of input.found) {
      for (const branchId of list.branchIds) {
        const [clusterId, xidText, nText] = branchId.split(":");
        const xid = xidText as Xid;
        if (!clusterId || !nText || this.table.get(xid)) continue;
        const n = Number(nText) as BranchNo;
        out.push({
          type: "append",
          record: {
            type: "recover",
            v: 1,
            xid,
            txn: {
              xid,
              principal: "verdict-recovery",
              beganAtMs: nowMs,
              deadlineMs: nowMs,
              labels: {},
            },
            branches: [
              {
                n,
                branchId: branchId as BranchId,
                participant: list.participant,
                kind: list.kind,
                payload: { kind: "orphan" },
              },
            ],
            reason: "mutant",
            atMs: nowMs,
          },
          proposal: { id: -1, term: 0 as Term },
        });
      }
    }
    return out;
  }
}

export const recoveryIgnoresTheLiving: EngineFactory = (cfg, random) =>
  new RecoveryIgnoresTheLiving(cfg, random);

/**
 * Breaks "a new leader serves nothing from the table before it has caught up": while catching
 * up it answers outcome calls from what its table holds so far — the presumed abort for a
 * transaction whose entries it has not applied yet.
 */
class AnswersBeforeCatchingUp extends Engine {
  override handle(input: Input, nowMs: number): Output[] {
    return super.handle(input, nowMs).map((o) => {
      const caughtUp = !(
        o.type === "reply" &&
        o.reply.kind === "error" &&
        o.reply.details?.retryAfterMs !== undefined
      );
      if (caughtUp || o.type !== "reply") return o;
      if (input.type !== "commit" && input.type !== "prepare" && input.type !== "abort") return o;
      const view = this.view(input.xid) ?? presumedAborted(input.xid);
      return { ...o, reply: { kind: "txn", view } };
    });
  }
}

function presumedAborted(xid: Xid): TxnView {
  const reason = { code: "presumed-abort", message: "mutant" };
  return {
    xid,
    state: "aborted",
    decision: "abort",
    reason,
    deadlineMs: 0,
    labels: {},
    branches: [],
  };
}

export const answersBeforeCatchingUp: EngineFactory = (cfg, random) =>
  new AnswersBeforeCatchingUp(cfg, random);
