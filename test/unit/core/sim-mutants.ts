/**
 * Deliberately broken engines, participants and etcd logs for the cluster simulator
 * (sim-cluster.ts), to show that its checkers can fail. None touches the real engine's code.
 * (Answering before catching up is mutants.ts's `answersBeforeCatchingUp`, used by both.)
 */
import { Engine, type Output } from "../../../coordinator/core/engine.js";
import type { CallOutput, CallResult, EngineFactory } from "./harness.js";
import type { ParticipantFactory } from "./sim-cluster.js";
import type { EtcdModelOptions } from "./sim-etcd.js";
import { MarkerParticipant } from "./sim-postgres.js";

/**
 * Breaks "a one-phase branch is settled by fencing its marker key": the check only reads
 * whether the branch committed, so a deposed leader's one-phase COMMIT still on the wire can
 * land after the new leader decided abort from the check.
 */
class UnfencedCheck extends MarkerParticipant {
  override execute(call: CallOutput): CallResult {
    if (call.type !== "check-one-phase") return super.execute(call);
    const state = this.branches.get(call.branch.branchId)?.state;
    return { type: "one-phase", committed: state === "committed" };
  }
}

export const unfencedOnePhaseCheck: ParticipantFactory = (name, kind, violation) =>
  new UnfencedCheck(name, kind, violation);

/**
 * Breaks "the term owns its loops": stepping down keeps the leadership's loops running, so a
 * deposed node goes on retrying phase 2 and checking one-phase branches.
 */
class LoopsOutliveTheirTerm extends Engine {
  override stepDown(): Output[] {
    return [];
  }
}

export const loopsOutliveTheirTerm: EngineFactory = (cfg, random) =>
  new LoopsOutliveTheirTerm(cfg, random);

/** Breaks "nothing overwrites a landed entry": appends compare leadership only. */
export const appendWithoutCreateRevisionCompare: EtcdModelOptions = {
  createRevisionCompare: false,
};

/**
 * Breaks "one branch has one actor at a time": a PostgreSQL rollback writes only a tombstone
 * instead of claiming the marker key, so a prepare paused after its marker insert still
 * prepares the branch after the rollback answered done. (participants/postgres rolled back
 * this way before its rollback claimed the key, leaving such a branch to its recovery scan.)
 */
export const tombstoneOnlyRollback: ParticipantFactory = (name, kind, violation) =>
  new MarkerParticipant(name, kind, violation, false);
