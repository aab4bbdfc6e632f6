/**
 * Per-branch limits that a single enlist cannot show: a second enlist on the same
 * participant merges into the first branch, and the merged work must stay within bounds.
 */
import type { ApiLimits } from "./contract/limits.js";

const workLimits = [
  ["statements", "statementsPerBranchMax"],
  ["ops", "opsPerBranchMax"],
  ["preconditions", "preconditionsPerBranchMax"],
  ["messages", "messagesPerBranchMax"],
] as const;

export function branchWorkOverLimit(
  limits: ApiLimits,
): (payload: unknown) => { limit: string; max: number } | undefined {
  return (payload) => {
    const work = payload as Record<string, unknown>;
    for (const [field, limit] of workLimits) {
      const items = work[field];
      if (Array.isArray(items) && items.length > limits[limit])
        return { limit, max: limits[limit] };
    }
    return undefined;
  };
}
