/** Bounding a wait by a deadline, the one way the participants do it. */

/**
 * Waits for `promise` until `deadlineMs` on the clock `nowMs`; undefined if the deadline
 * came first.
 */
export async function beforeDeadline<T>(
  promise: Promise<T>,
  deadlineMs: number,
  nowMs: () => number = Date.now,
): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, deadlineMs - nowMs()));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
