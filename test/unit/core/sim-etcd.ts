/**
 * A model of what etcd promises the decision log (docs/etcd.md), for the cluster simulator
 * (sim-cluster.ts): one linearizable key space with an election key and `log/<index>` keys.
 *
 * - The election key's create revision is the term. Campaigning succeeds only while the key is
 *   absent; a lease expiry (or a revoke) deletes it. Revisions only grow, so terms do.
 * - An append is one Txn: `create_revision(leader) = term` and `create_revision(log/<i>) = 0`,
 *   evaluated atomically when etcd executes it — not when it was sent. Its failure branch
 *   reads both keys, so the sender tells "my bytes are there" (it landed) from "another
 *   term leads" from "my term, other bytes" (its view of the log end is stale).
 * - Reads are linearizable: a takeover read sees every entry that landed before it.
 *
 * `createRevisionCompare: false` is a broken etcd log for a mutant (sim-mutants.ts): an
 * append then overwrites whatever landed at its index. Every put is kept in `puts`, so the
 * checkers can see an overwrite without trusting the model.
 */
import type { LogRecord } from "../../../coordinator/core/records.js";

/** The value of one `log/<index>` key: one record, and who wrote it. */
export interface LogValue {
  readonly term: number;
  readonly record: LogRecord;
  /** The record's bytes as sent (a re-send carries the same bytes). */
  readonly bytes: string;
}

export type AppendAnswer = "landed" | "not-leader" | "conflict";

export interface EtcdModelOptions {
  readonly createRevisionCompare: boolean;
}

export class EtcdModel {
  private revision = 1;
  private leader: { term: number; node: number } | undefined;
  private readonly log = new Map<number, LogValue>();
  private end = 0;
  /** Every put that landed, in order. */
  readonly puts: { index: number; value: LogValue }[] = [];
  /** Appends whose failure branch found the sender's own bytes (an earlier send landed). */
  foundLanded = 0;
  /** Appends refused because another term, or none, holds the election key. */
  refused = 0;

  constructor(private readonly opts: EtcdModelOptions) {}

  /** The current term (the election key's create revision), if a leader holds the key. */
  get term(): number | undefined {
    return this.leader?.term;
  }

  get leaderNode(): number | undefined {
    return this.leader?.node;
  }

  /** The largest index that holds an entry: a linearizable read. */
  get lastIndex(): number {
    return this.end;
  }

  entry(index: number): LogValue | undefined {
    return this.log.get(index);
  }

  /** Creates the election key if it is absent; returns the new term, or undefined. */
  campaign(node: number): number | undefined {
    if (this.leader) return undefined;
    this.revision += 1;
    this.leader = { term: this.revision, node };
    return this.revision;
  }

  /** The leader's lease expired or was revoked: the election key is deleted. */
  expire(term: number): void {
    if (this.leader?.term !== term) return;
    this.revision += 1;
    this.leader = undefined;
  }

  /** Executes one append Txn now. */
  append(term: number, index: number, value: LogValue): AppendAnswer {
    const there = this.log.get(index);
    const leads = this.leader?.term === term;
    const free = there === undefined || !this.opts.createRevisionCompare;
    if (leads && free) {
      this.revision += 1;
      this.log.set(index, value);
      this.end = Math.max(this.end, index);
      this.puts.push({ index, value });
      return "landed";
    }
    if (there?.bytes === value.bytes) {
      this.foundLanded += 1;
      return "landed";
    }
    if (leads) return "conflict";
    this.refused += 1;
    return "not-leader";
  }
}
