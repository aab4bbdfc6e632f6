/**
 * The one interface every participant implements, in XA terms. The coordinator knows
 * participants only through this file; participants know nothing of the API or Raft.
 *
 * Contract (docs/architecture.md §7):
 * - `prepare` is idempotent: preparing a branch that is already prepared votes yes
 *   without redoing its work; preparing a branch that was rolled back votes no (tombstone).
 * - `commit` / `rollback` are idempotent and classify a branch they cannot find:
 *   already done (marker / outcome record says so) vs heuristic (someone else went the
 *   other way). They throw only for transient conditions (server down, timeout), which
 *   the caller retries with backoff; they never throw for a heuristic outcome.
 * - A rollback never overtakes a prepare still in flight on the same branch.
 * - `recover` lists this cluster's prepared branches only (exact prefix match).
 * - `inspect` only reads: it never changes a branch, and answers for a branch it never saw.
 */
import type { RecordedWork } from "../shared/branch-work.js";
import type { BranchView } from "./inspect.js";

export type { BranchView } from "./inspect.js";

/** `<clusterId>:<xid>:<n>`; PostgreSQL limits a gid to 200 bytes. */
export type BranchId = string & { readonly __brand: "BranchId" };

export const participantKinds = ["postgres", "redis", "kafka"] as const;
export type ParticipantKind = (typeof participantKinds)[number];

export type Vote =
  | {
      readonly vote: "yes";
      /**
       * What the participant needs in phase 2 and only knew at prepare, opaque to the
       * coordinator: kept durably with the decision and handed back as `Phase2Context.evidence`
       * (Kafka: the marker partition's offset before which no record of the branch can be).
       */
      readonly evidence?: string;
    }
  | {
      readonly vote: "no";
      /** Stable, machine-readable reason, e.g. `statement-failed`, `expectation-unmet`, `lock-conflict`. */
      readonly reason: string;
      readonly detail: string;
    };

/** What a phase-2 call found. `heuristic-*` means someone else decided the branch. */
export type Phase2Outcome =
  | { readonly outcome: "done" }
  | { readonly outcome: "already-done" }
  | { readonly outcome: "heuristic-commit"; readonly detail: string }
  | { readonly outcome: "heuristic-rollback"; readonly detail: string };

export type OnePhaseOutcome =
  | { readonly outcome: "committed" }
  | { readonly outcome: "aborted"; readonly reason: string; readonly detail: string };

export interface Health {
  readonly ok: boolean;
  readonly detail: string;
  /** Server settings that weaken a guarantee but were allowed by configuration. */
  readonly warnings: readonly string[];
}

export interface BranchRef<P extends RecordedWork = RecordedWork> {
  readonly branchId: BranchId;
  /**
   * The branch's work (shared/branch-work.ts), validated at enlist; a branch recovery found
   * without any record of its work (`orphan`) is only ever committed or rolled back.
   */
  readonly payload: P;
}

export interface PrepareContext {
  /** Absolute deadline (epoch ms); prepare gives up and votes no past it. */
  readonly deadlineMs: number;
  /**
   * The principal (token id) whose transaction this is: a participant may run its work
   * with that principal's own credentials (PostgreSQL statement roles, docs/security.md).
   */
  readonly principal?: string;
}

export interface Phase2Context {
  /** Term of the log entry that holds the decision, for the participant's audit trail. */
  readonly term: number;
  /**
   * When the decision was logged (epoch ms, the leader's clock). Nothing of the branch was
   * made visible before it, which bounds where a participant must look for its own marker.
   */
  readonly decidedAtMs: number;
  /** The branch's yes vote's `evidence`; absent when it had none (or the branch never voted). */
  readonly evidence?: string;
  /**
   * True only on the first phase-2 call of a branch whose decision this leader logged in its
   * current leadership: no call on the branch ran anywhere before, so nothing of it can be
   * committed yet (Kafka then skips its marker check). Absent on every retry and re-drive.
   */
  readonly firstCall?: true;
}

export interface Participant<P extends RecordedWork = RecordedWork> {
  readonly name: string;
  readonly kind: ParticipantKind;
  /** Checks server settings and registers the cluster id; throws a clear error if unsafe. */
  start(clusterId: string): Promise<void>;
  prepare(branch: BranchRef<P>, ctx: PrepareContext): Promise<Vote>;
  commit(branch: BranchRef<P>, ctx: Phase2Context): Promise<Phase2Outcome>;
  rollback(branch: BranchRef<P>, ctx: Phase2Context): Promise<Phase2Outcome>;
  /** Single-branch transactions only (never Kafka): the branch commits with its marker. */
  commitOnePhase?(branch: BranchRef<P>, ctx: PrepareContext): Promise<OnePhaseOutcome>;
  /** For a one-phase branch after a crash: did it commit (its marker is present)? */
  isCommitted?(branchId: BranchId): Promise<boolean>;
  /**
   * Called once each time this node becomes leader, before any phase 2: a participant whose
   * earlier attempts could still be running elsewhere (Kafka) fences them all here.
   */
  fence?(): Promise<void>;
  /** This cluster's prepared branches, by exact prefix match. */
  recover(): Promise<BranchId[]>;
  /**
   * The participant's own view of `branchId`, read from the server now (docs/console.md);
   * `evidence` is the branch's yes vote's, when the log has it. Throws when it cannot answer.
   */
  inspect(branchId: BranchId, evidence?: string): Promise<BranchView>;
  /** Collects markers and outcome records of forgotten branches. */
  forget(branchIds: readonly BranchId[]): Promise<void>;
  health(): Promise<Health>;
  close(): Promise<void>;
}
