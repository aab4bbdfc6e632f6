/**
 * The API contract as the SDK speaks it: the JSON shapes of requests, answers and errors
 * (docs/architecture.md §8), written out as plain types so that the published package
 * needs neither zod nor the coordinator's sources. The coordinator's schemas
 * (coordinator/api/contract/schemas.ts) stay the one validator; test/unit/client/wire.test.ts
 * type-checks that every shape here equals the schema's, so the two cannot drift apart.
 * Bounds (lengths, counts) are the server's to enforce: see docs/configuration.md.
 */

/** The API's stable error codes (the catalogue in coordinator/api/contract/errors.ts). */
export type ErrorCode =
  | "bad-request"
  | "json-too-deep"
  | "request-timeout"
  | "validation-failed"
  | "invalid-utf8"
  | "headers-too-large"
  | "unknown-participant"
  | "limit-exceeded"
  | "unauthorized"
  | "forbidden"
  | "participant-forbidden"
  | "not-found"
  | "method-not-allowed"
  | "transaction-not-found"
  | "branch-not-found"
  | "idempotency-key-reused"
  | "transaction-aborted"
  | "transaction-committed"
  | "invalid-state"
  | "branch-not-prepared"
  | "unsupported-media-type"
  | "body-too-large"
  | "payload-too-large"
  | "too-many-transactions"
  | "rate-limited"
  | "too-many-streams"
  | "internal"
  | "not-leader"
  | "outcome-unknown"
  | "log-full"
  | "unavailable";

export type TransactionState =
  "active" | "preparing" | "prepared" | "committing" | "committed" | "aborting" | "aborted";

export type BranchState =
  | "enlisted"
  | "preparing"
  | "prepared"
  | "committing"
  | "committed"
  | "rolling-back"
  | "rolled-back"
  | "heuristic-commit"
  | "heuristic-rollback"
  | "settled-by-operator";

export type ParticipantKind = "postgres" | "redis" | "kafka";

// ---- requests: what a caller may send ----

export interface BeginRequest {
  /** Time until the deadline; undecided then, it aborts. Server default if absent. */
  timeoutMs?: number | undefined;
  /** Free-form tags, shown to operators. */
  labels?: Record<string, string> | undefined;
  /** A whole transaction in one request: enlisted in order right after the begin. */
  branches?: EnlistRequest[] | undefined;
  /** With branches: commit at once and answer the outcome (VerdictClient.transact). */
  commit?: boolean | undefined;
}

export type SqlParam = string | number | boolean | null;

export interface Statement {
  sql: string;
  params?: SqlParam[] | undefined;
  /** Rows the statement must affect (or return), else the branch votes no. */
  expectRows?: number | undefined;
}

export type RedisOp =
  | { op: "set"; key: string; value: string; ttlMs?: number | undefined }
  | { op: "del"; key: string }
  | { op: "incrby"; key: string; by: number }
  | { op: "hset"; key: string; field: string; value: string }
  | { op: "hdel"; key: string; field: string }
  | { op: "sadd" | "srem" | "lpush" | "rpush"; key: string; values: string[] };

export type RedisPrecondition =
  { key: string; equals: string } | { key: string; absent: true } | { key: string; exists: true };

export interface KafkaMessage {
  topic: string;
  key?: string | undefined;
  value: string;
  headers?: Record<string, string> | undefined;
  partition?: number | undefined;
}

/** PostgreSQL, coordinator-executed: Verdict runs the statements at prepare. */
export interface PgStatementsBranch {
  participant: string;
  statements: Statement[];
}

/** PostgreSQL, service-prepared: the service prepares with the returned gid, then reports it. */
export interface PgServicePreparedBranch {
  participant: string;
  servicePrepared: true;
}

/** Redis: operations staged at prepare and applied at commit. */
export interface RedisBranch {
  participant: string;
  ops: RedisOp[];
  preconditions?: RedisPrecondition[] | undefined;
}

/** Kafka: messages produced at commit, exactly once. */
export interface KafkaBranch {
  participant: string;
  messages: KafkaMessage[];
}

export type EnlistRequest =
  PgStatementsBranch | PgServicePreparedBranch | RedisBranch | KafkaBranch;

// ---- answers ----

export type AbortReasonCode =
  | "deadline-passed"
  | "vote-no"
  | "prepare-failed"
  | "client-abort"
  | "operator-abort"
  | "presumed-abort"
  | "shutdown"
  | "leader-changed";

/** Why a transaction aborted; `branch` names the branch that voted no or failed. */
export interface AbortReason {
  code: AbortReasonCode;
  message: string;
  branch?: number | undefined;
}

export interface BranchView {
  branch: number;
  /** `<clusterId>:<xid>:<n>`; for PostgreSQL the gid. */
  branchId: string;
  participant: string;
  kind: ParticipantKind;
  state: BranchState;
  vote?: "yes" | "no" | undefined;
  voteReason?: string | undefined;
}

export interface TransactionView {
  xid: string;
  state: TransactionState;
  decision?: "commit" | "abort" | undefined;
  /** ISO 8601. */
  deadline: string;
  labels: Record<string, string>;
  branches: BranchView[];
  reason?: AbortReason | undefined;
  heuristic?: "heuristic-commit" | "heuristic-rollback" | "heuristic-mixed" | undefined;
}

export interface EnlistResponse {
  branch: number;
  branchId: string;
  participant: string;
  kind: ParticipantKind;
}
