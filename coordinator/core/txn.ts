/**
 * Transaction states as clients and operators see them (docs/architecture.md §4):
 *
 *   active → preparing → prepared → committing → committed
 *   active | preparing | prepared → aborting → aborted
 *
 * The leader's own, finer phases and their one transition function are in phase.ts;
 * `stateOf` there maps each phase to one of these states.
 */
export const txnStates = [
  "active",
  "preparing",
  "prepared",
  "committing",
  "committed",
  "aborting",
  "aborted",
] as const;
export type TxnState = (typeof txnStates)[number];

export function isDecided(state: TxnState): boolean {
  return (
    state === "committing" || state === "committed" || state === "aborting" || state === "aborted"
  );
}

export function isFinished(state: TxnState): boolean {
  return state === "committed" || state === "aborted";
}

/** Decided but unfinished, or prepared and waiting for its decision: an operator's "in doubt". */
export function isInDoubt(state: TxnState): boolean {
  return state === "committing" || state === "aborting" || state === "prepared";
}
