/**
 * The phase-2 retry rule. The decision is durable, so phase 2 never gives up: a failed call is
 * tried again after a capped exponential backoff with jitter, whatever the error (a participant
 * that refuses for good needs an operator, who settles the branch by hand). Waiting clients
 * are not held behind a stalled branch: the first failure answers them `committing`.
 */
import { backoffMs, type BackoffConfig } from "./backoff.js";
import type { CallError } from "./inputs.js";
import type { Phase2Track } from "./phase.js";

/** A new track: its first call is due now. */
export const firstTrack = (nowMs: number): Phase2Track => ({
  inFlight: false,
  attempt: 0,
  dueMs: nowMs,
});

/** The call on `track` failed: the next one is due after the backoff of this attempt. */
export function retryLater(
  track: Phase2Track,
  error: CallError,
  nowMs: number,
  backoff: BackoffConfig,
  random: () => number,
): void {
  track.inFlight = false;
  track.lastError = error;
  track.attempt += 1;
  track.dueMs = nowMs + backoffMs(backoff, track.attempt, random);
}

/** Whether the track's next call may go out now. */
export const isDue = (track: Phase2Track, nowMs: number): boolean =>
  !track.inFlight && track.dueMs <= nowMs;
