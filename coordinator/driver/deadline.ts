/** A bound on how long the driver waits for any one participant call. */
export class CallTimeoutError extends Error {
  override readonly name = "CallTimeoutError";
  /** The code the engine sees (a failed vote's, a phase-2 failure's). */
  readonly code = "timeout";
}

/**
 * Rejects when `work` takes longer than `ms`. The work itself is not cancelled: a participant
 * keeps its own, shorter, bounds; this one only stops the driver from waiting forever.
 */
export function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CallTimeoutError(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
