/**
 * What every participant's errors have in common. Each participant keeps its own
 * `errors.ts` with its own base class (extending `ParticipantError`) and its own error
 * classes; this module holds only the ids and the retryable flag they all carry, and the
 * helpers they all use to describe a cause.
 */

/** The ids every participant error carries. */
export interface ParticipantErrorIds {
  readonly participant: string;
  readonly branchId?: string;
}

export abstract class ParticipantError extends Error {
  /** Stable, machine-readable, e.g. `participant-unavailable`, `invalid-config`. */
  abstract readonly code: string;
  /** Whether repeating the same call can help. */
  abstract readonly retryable: boolean;
  readonly participant: string;
  readonly branchId: string | undefined;

  constructor(message: string, ids: ParticipantErrorIds, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.participant = ids.participant;
    this.branchId = ids.branchId;
  }
}

/** The ids of `participant`, with `branchId` only when there is one. */
export function errorIds(participant: string, branchId?: string): ParticipantErrorIds {
  return branchId === undefined ? { participant } : { participant, branchId };
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** True when `err` carries a Node system error code (ECONNREFUSED, ECONNRESET, …). */
export function hasSystemErrorCode(err: Error): boolean {
  const sysCode = (err as NodeJS.ErrnoException).code;
  return typeof sysCode === "string" && sysCode.startsWith("E");
}
