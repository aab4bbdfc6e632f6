/**
 * Transactions that outlive a leader change. Begin and enlist are not logged: a transaction
 * that had not reached `preparing` when its leader died is gone, and the next call about it
 * answers 409 aborted with reason `leader-changed`. Nothing of it was applied anywhere, so
 * beginning it again is safe: `runTransaction` does so, a bounded number of times.
 */
import type { VerdictClient } from "./client.js";
import { TransactionAbortedError } from "./errors.js";
import type { BeginRequest, TransactionView } from "./wire.js";

export interface RunTransactionOptions {
  readonly begin?: BeginRequest;
  /** Fresh begins after a leader change lost the transaction (default 3). */
  readonly restartsMax?: number;
}

/** Whether `e` says the transaction died with its leader before `preparing` (safe to redo). */
export function lostWithLeader(e: unknown): boolean {
  return e instanceof TransactionAbortedError && e.reason?.code === "leader-changed";
}

/**
 * Begins a transaction, lets `work` enlist its branches, and commits it; begins it again
 * when a leader change lost it. `work` must enlist the same branches each time: it may run
 * more than once.
 */
export async function runTransaction<T>(
  client: VerdictClient,
  work: (xid: string) => Promise<T>,
  options: RunTransactionOptions = {},
): Promise<{ readonly result: T; readonly view: TransactionView }> {
  const restartsMax = options.restartsMax ?? 3;
  for (let restarts = 0; ; restarts++) {
    const { xid } = await client.begin(options.begin);
    try {
      const result = await work(xid);
      return { result, view: await client.commit(xid) };
    } catch (e) {
      if (!lostWithLeader(e) || restarts >= restartsMax) throw e;
    }
  }
}
