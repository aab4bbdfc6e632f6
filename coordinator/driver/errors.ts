/**
 * Typed errors of the driver: expected conditions its callers handle. Each carries the
 * participant and operation it concerns and whether repeating the call can help.
 */

/**
 * An operator's or a client's direct participant call (a report-prepared check, the admin
 * listing, a health probe) that did not answer: the participant is not configured, is
 * unreachable, failed, hit a failpoint, or exceeded the driver's call bound.
 */
export class ParticipantCallError extends Error {
  override readonly name = "ParticipantCallError";
  readonly retryable: boolean;

  constructor(
    readonly participant: string,
    readonly op: string,
    message: string,
    options: { retryable: boolean; cause?: unknown },
  ) {
    super(`${op} ${participant}: ${message}`, { cause: options.cause });
    this.retryable = options.retryable;
  }
}
