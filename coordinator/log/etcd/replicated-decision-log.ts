/**
 * What a replicated decision log adds to DecisionLog (../decision-log.ts), whose meaning is
 * unchanged: one instance serves ONE term of this node's leadership.
 *
 * - `append` rejects NotLeaderError once the term is over (lease deadline, another leader, or
 *   an append's failure branch found `leader` not ours). Entries of an append rejected that
 *   way are IN DOUBT: they may have landed; the next leader's replay decides.
 * - `replay` is the takeover read: linearizable, at one fixed revision at or after the term's
 *   start, so it covers every append of every earlier term.
 * - `truncateSuffix` can only drop entries that never landed: a landed entry is committed.
 */
import type { DecisionLog } from "../decision-log.js";

export interface ReplicatedDecisionLog<R> extends DecisionLog<R> {
  /** The term this log appends in: the election key's create revision. */
  readonly term: number;
  /** Whether the term is still this node's (by its own lease clock). */
  isLeader(): boolean;
  /**
   * Resolves once a linearizable read sent after this call found this node still leading
   * (ReadIndex; concurrent callers share one read); rejects NotLeaderError otherwise.
   */
  confirmLeadership(): Promise<void>;
}
