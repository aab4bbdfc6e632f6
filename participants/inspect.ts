/**
 * A participant's own view of one branch (`Participant.inspect`): what the server holds now,
 * read live and independently of Verdict's log, so an operator can set the two side by side
 * (docs/console.md). Every list is bounded here; every text may come from a client (SQL, keys,
 * labels) and is shown as text, never markup.
 */

/** What the participant holds for the branch, by its own records. */
export type BranchHolding = "prepared" | "committed" | "rolled-back" | "absent";

/** At most this many items in any list of a view (locks, blocked backends, operations). */
export const inspectListMax = 20;
/** Texts in a view (queries, values) are cut to this many characters. */
export const inspectTextCharsMax = 500;

export interface BlockedBackend {
  readonly pid: number;
  readonly user: string;
  /** How long it has waited for the lock (since its state last changed). */
  readonly waitingMs: number;
  readonly query: string;
}

export interface PostgresBranchView {
  readonly kind: "postgres";
  readonly holds: BranchHolding;
  /** The `pg_prepared_xacts` row, while the branch is prepared. */
  readonly prepared: {
    readonly preparedAtMs: number;
    readonly owner: string;
    readonly database: string;
    readonly transaction: string;
  } | null;
  readonly locks: {
    /** Locks the prepared transaction holds (0 once it is finished). */
    readonly held: number;
    /** Held since prepare at the latest. */
    readonly heldForMs: number;
    /** Relations it holds locks on (first `inspectListMax`). */
    readonly relations: readonly string[];
    /** Backends waiting on one of its locks (first `inspectListMax`). */
    readonly blocked: readonly BlockedBackend[];
  };
  /** The branch's commit marker, written by its own transaction (`forged`: by any other). */
  readonly marker: { readonly present: boolean; readonly atMs?: number; readonly forged: number };
  /** The tombstone a rollback leaves (refuses a late prepare). */
  readonly tombstone: { readonly present: boolean; readonly atMs?: number };
}

export interface RedisStagedOp {
  readonly op: string;
  readonly key: string;
  /** The operation's argument(s), as text. */
  readonly detail: string;
}

export interface RedisBranchView {
  readonly kind: "redis";
  readonly holds: BranchHolding;
  /** The staged program, while the branch is prepared. */
  readonly staged: {
    readonly preparedAtMs: number;
    readonly preconditions: number;
    readonly ops: number;
    readonly firstOps: readonly RedisStagedOp[];
  } | null;
  /** Keys whose Verdict lock this branch holds (first `inspectListMax`). */
  readonly locksHeld: readonly string[];
  /** The outcome record (a rollback's is the tombstone), until the branch is forgotten. */
  readonly outcome: {
    readonly outcome: string;
    readonly prepared: boolean;
    readonly term: number;
    readonly decidedAtMs: number;
    readonly atMs: number;
  } | null;
}

export interface KafkaBranchView {
  readonly kind: "kafka";
  /** Nothing is staged in Kafka: a branch is committed (marker found) or absent. */
  readonly holds: BranchHolding;
  readonly marker: {
    readonly topic: string;
    readonly partition: number;
    readonly committed: boolean;
    /** The marker record's offset, when committed. */
    readonly offset: string | null;
    /** The committed range that was read: [from, until). */
    readonly scannedFrom: string;
    readonly scannedUntil: string;
  };
  readonly transactionalId: {
    readonly id: string;
    /** The broker's state of the id, when the client can ask (null: it cannot). */
    readonly state: string | null;
    readonly note: string;
  };
}

export type BranchView = PostgresBranchView | RedisBranchView | KafkaBranchView;

export function clipText(text: string): string {
  return text.length > inspectTextCharsMax ? text.slice(0, inspectTextCharsMax) : text;
}
