/**
 * Merging a second enlist into the branch a participant already has (one branch per
 * participant per transaction: two branches on one database would deadlock each other).
 * Work is the one branch-work type (shared/branch-work.ts); merging appends the second
 * enlist's lists (statements, ops and preconditions, messages) after the first's, in order.
 */
import type { BranchWork } from "../../shared/branch-work.js";

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
