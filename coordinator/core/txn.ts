/**
 * Transaction states (docs/architecture.md §4) and the one transition function that the
 * engine, recovery and the tests all use.
 *
 *   active → preparing → prepared → committing → committed
 *   active | preparing | prepared → aborting → aborted
 *
 * `active` and `prepared` live on the leader only; the others are derived from the log.
 */
import { assertNever, invariant } from "./assert.js";

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

export type TxnEvent =
  "preparing-written" | "all-voted-yes" | "commit-decided" | "abort-decided" | "all-acknowledged";

/** The state after `event`, or undefined when the event is not allowed from `from`. */
export function nextState(from: TxnState, event: TxnEvent): TxnState | undefined {
  switch (event) {
    case "preparing-written":
      return from === "active" ? "preparing" : undefined;
    case "all-voted-yes":
      return from === "preparing" ? "prepared" : undefined;
    case "commit-decided":
      // A commit decision needs every branch prepared: from `prepared`, or from `preparing`
      // when the engine counted every yes vote in the same step.
      return from === "prepared" || from === "preparing" ? "committing" : undefined;
    case "abort-decided":
      return from === "active" || from === "preparing" || from === "prepared"
        ? "aborting"
        : undefined;
    case "all-acknowledged":
      if (from === "committing") return "committed";
      if (from === "aborting") return "aborted";
      return undefined;
    default:
      return assertNever(event, "transaction event");
  }
}

/** Like nextState, for callers that have already checked: an invalid transition is a bug. */
export function transition(from: TxnState, event: TxnEvent): TxnState {
  const to = nextState(from, event);
  invariant(to !== undefined, `transition ${event} not allowed from ${from}`);
  return to;
}

export function isDecided(state: TxnState): boolean {
  return (
    state === "committing" || state === "committed" || state === "aborting" || state === "aborted"
  );
}

export function isFinished(state: TxnState): boolean {
  return state === "committed" || state === "aborted";
}
