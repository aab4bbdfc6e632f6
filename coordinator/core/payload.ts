/**
 * A branch's work in the engine. Merging a second enlist into the branch a participant already
 * has (one branch per participant per transaction: two branches on one database would deadlock
 * each other): work is the one branch-work type (shared/branch-work.ts); merging appends the
 * second enlist's lists (statements, ops and preconditions, messages) after the first's, in
 * order. Releasing it once no one needs it, so memory and snapshots grow with work in flight,
 * not with transactions kept for retention.
 */
import type { ParticipantKind } from "../../participants/participant.js";
import type { BranchWork, RecordedWork } from "../../shared/branch-work.js";
import type { Decision } from "./records.js";

export type MergeResult = { ok: true; work: BranchWork } | { ok: false; why: string };

export function mergeWork(first: BranchWork, second: BranchWork): MergeResult {
  const refused = (): MergeResult => ({
    ok: false,
    why: `cannot add ${second.kind} work to a ${first.kind} branch`,
  });
  switch (first.kind) {
    case "statements":
      if (second.kind !== "statements") return refused();
      return {
        ok: true,
        work: { ...first, statements: [...first.statements, ...second.statements] },
      };
    case "ops":
      if (second.kind !== "ops") return refused();
      return {
        ok: true,
        work: {
          ...first,
          ops: [...first.ops, ...second.ops],
          preconditions: [...first.preconditions, ...second.preconditions],
        },
      };
    case "messages":
      if (second.kind !== "messages") return refused();
      return { ok: true, work: { ...first, messages: [...first.messages, ...second.messages] } };
    case "service-prepared":
      // The service prepared it whole: no other work can join it.
      return refused();
  }
}

/** Whether `w` is work (not an orphan's or released). */
export function isWork(w: RecordedWork): w is BranchWork {
  return w.kind !== "orphan" && w.kind !== "released";
}

/** `spec` without its work (the same object when it holds none to release). */
export function releaseWork<S extends { readonly payload: RecordedWork }>(spec: S): S {
  // Service-prepared work is its kind alone: nothing to release, and the kind says how to drive it.
  if (!isWork(spec.payload) || spec.payload.kind === "service-prepared") return spec;
  return { ...spec, payload: { kind: "released" } };
}

/**
 * Whether a branch still needs its work, from what the log says (every replica alike). Before
 * the decision, yes: votes are not logged, so a prepare re-driven after a restart needs it.
 * After it, a PostgreSQL or Redis branch is prepared (or rolled back) at its participant and
 * phase 2 needs only its id; Kafka produces its messages at commit, so a committing Kafka
 * branch keeps them until its phase 2 is acknowledged.
 */
export function workNeeded(
  kind: ParticipantKind,
  decision: Decision | undefined,
  acknowledged: boolean,
): boolean {
  if (decision === undefined) return true;
  return kind === "kafka" && decision === "commit" && !acknowledged;
}
