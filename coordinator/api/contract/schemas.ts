/**
 * Schemas of every request and response of the API (docs/architecture.md §8), built from
 * the limits so that every string and list is bounded by configuration. Objects are
 * strict: an unknown field is a 400, never silently ignored. Request schemas are
 * what the routes validate; response schemas are what the routes promise and what
 * the OpenAPI document publishes. Types for the SDK come from `z.input` / `z.output`.
 */
import { z } from "zod";
import {
  txnStates as transactionStates,
  type TxnState as TransactionState,
} from "../../core/txn.js";
import { cursorPattern, parseCursor } from "./cursor.js";
import { errorBodySchema } from "./errors.js";
import { participantBranchEntry, preparedBranchEntry } from "./inspect.js";
import { healthSchemas } from "./health.js";
import { branchWorkSchemas } from "../../../shared/branch-work.js";
import type { ApiLimits } from "../../config/limits.js";
import { defaultApiLimits, fixedLimits, responseLimits } from "../../config/limits.js";

/** xid: URL-safe, no `:` (the branch id separator). */
export const xidPattern = new RegExp(`^[A-Za-z0-9_-]{1,${fixedLimits.xidCharsMax}}$`);
/** Participant names, as configured. */
export const participantNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Label names: no spaces or control characters. */
export const labelNamePattern = /^[A-Za-z0-9][A-Za-z0-9_./-]*$/;
/** Label values: no C0 control characters but tab (they would corrupt logs and terminals). */
// eslint-disable-next-line no-control-regex -- matching control characters is its purpose
export const labelValuePattern = /^[^\x00-\x08\x0a-\x1f]*$/;
/** A UTF-16 surrogate without its pair: a JSON `\ud800` escape, not a character. */
const loneSurrogate = /\p{Cs}/u;
/** Idempotency-Key: printable ASCII, no spaces. */
export const idempotencyKeyPattern = /^[\x21-\x7e]+$/;
/**
 * W3C trace context `traceparent`, as the spec writes it. Not enforced: the spec says a
 * malformed one is ignored (a new trace starts), so the document publishes it as a hint only.
 */
export const traceparentPattern = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const { branchIdCharsMax } = fixedLimits;
const {
  messageCharsMax,
  membersMax,
  recoveryErrorsMax,
  historyEntriesMax,
  preparedBranchesListedMax,
  warningsMax,
} = responseLimits;
/** A participant's error or vote code as the admin view shows it. */
const errorCodeCharsMax = 200;

/** The states of docs/architecture.md §4, as the engine defines them. */
export { txnStates as transactionStates } from "../../core/txn.js";
export type { TxnState as TransactionState } from "../../core/txn.js";

/**
 * A branch's life as the API shows it. `enlisted`: work staged (or, service-prepared,
 * waiting for the service to report). `heuristic-*`: the participant went its own way,
 * or an operator recorded a resolution.
 */
export const branchStates = [
  "enlisted",
  "preparing",
  "prepared",
  "committing",
  "committed",
  "rolling-back",
  "rolled-back",
  "heuristic-commit",
  "heuristic-rollback",
  "settled-by-operator",
] as const;

export const heuristicOutcomes = [
  "heuristic-commit",
  "heuristic-rollback",
  "heuristic-mixed",
] as const;

/** What an operator may do to one transaction (admin resolve). */
export const resolveActions = ["commit", "abort", "settle", "forget"] as const;

/** Why a transaction aborted; stable, machine-readable. */
export const abortReasonCodes = [
  /** Its deadline passed before a commit decision. */
  "deadline-passed",
  /** A branch voted no (`branch` says which; `message` says why). */
  "vote-no",
  /** A prepare call failed or timed out: presumed no. */
  "prepare-failed",
  /** The client called abort. */
  "client-abort",
  /** An operator decided abort (admin resolve). */
  "operator-abort",
  /**
   * The log holds no `preparing` entry for it (after a failover, or recovery found one of its
   * branches prepared): presumed abort.
   */
  "presumed-abort",
  /** The node shut down before it was decided. */
  "shutdown",
  /** Begun under an earlier leader and never reached `preparing`: begin it again. */
  "leader-changed",
] as const;

/** Log entry kinds shown in the admin history. */
export const historyEntryKinds = [
  "begin",
  "enlist",
  "report-prepared",
  "preparing",
  "decision",
  "acknowledge",
  "heuristic",
  "operator-resolution",
  "recovery",
  "forget",
] as const;

const participantKinds = ["postgres", "redis", "kafka"] as const;
const participantKindSchema = z.enum(participantKinds);
export type ParticipantKind = (typeof participantKinds)[number];

/** The node's configured participant names by kind: what an enlist may name. */
export type ParticipantNames = Readonly<Record<ParticipantKind, readonly string[]>>;

/** Participant names grouped by kind, from the node's participant list. */
export function participantNamesByKind(
  list: readonly { readonly name: string; readonly kind: ParticipantKind }[],
): ParticipantNames {
  const names = (kind: ParticipantKind) => list.filter((p) => p.kind === kind).map((p) => p.name);
  return { postgres: names("postgres"), redis: names("redis"), kafka: names("kafka") };
}

export { cursorPattern };
/** A cursor of the audit trail: the `seq` of the last record of the previous page. */
export const auditCursorPattern = /^(0|[1-9][0-9]{0,14})$/;

/**
 * `participants`: the node's participants, so that the enlist schema (and the document the
 * node serves) names exactly the participants it accepts; without them (a document built
 * without a node) any well-formed name.
 */
export function buildSchemas(limits: ApiLimits, participants?: ParticipantNames) {
  const text = (max: number) => z.string().max(max);
  const message = text(messageCharsMax);
  const errorCode = text(errorCodeCharsMax);
  const xid = z.string().regex(xidPattern).meta({ description: "Transaction id." });
  const participant = z
    .string()
    .regex(participantNamePattern)
    .meta({ description: "A participant name from the cluster's configuration." });
  /** The participant of a branch of this kind: one of the node's, when it is known. */
  const participantOf = (kind: ParticipantKind): z.ZodType<string, string> => {
    if (!participants) return participant;
    const [first, ...rest] = participants[kind];
    if (first === undefined) {
      return z.never().meta({ description: `This node has no ${kind} participant.` });
    }
    return z.enum([first, ...rest]).meta({ description: `A ${kind} participant of this node.` });
  };
  const branchNumber = z.int().min(1).max(limits.branchesPerTransactionMax);
  const branchId = z
    .string()
    .min(5)
    .max(branchIdCharsMax)
    .meta({ description: "`<clusterId>:<xid>:<n>`; for PostgreSQL the gid." });
  const isoTime = z.iso.datetime();
  /** Decimal integers in a path or query string. */
  // Path and query integers: decimal digits on the wire, documented as the integer they
  // denote with its range (a pattern cannot say `min`..`max`, and a fuzzer reads the range).
  const intString = (min: number, max: number) =>
    z
      .string()
      .regex(/^[0-9]{1,9}$/)
      .transform(Number)
      .pipe(z.int().min(min).max(max))
      .meta({ type: "integer", minimum: min, maximum: max });

  const labels = z
    .record(
      z.string().min(1).max(limits.labelCharsMax).regex(labelNamePattern),
      text(limits.labelCharsMax)
        .regex(labelValuePattern, "control characters (other than tab) are not allowed")
        .refine((v) => !loneSurrogate.test(v), "an unpaired surrogate is not a character"),
    )
    .refine((r) => Object.keys(r).length <= limits.labelsMax, {
      message: `at most ${limits.labelsMax} labels`,
    })
    .meta({ maxProperties: limits.labelsMax, description: "Free-form tags, shown to operators." });

  // ---- client requests ----

  const beginRequest = z
    .object({
      timeoutMs: z
        .int()
        .min(limits.timeoutMsMin)
        .max(limits.timeoutMsMax)
        .default(limits.timeoutMsDefault)
        .meta({ description: "Time until the deadline; undecided then, it aborts." }),
      labels: labels.default({}),
    })
    .strict();

  // The branch work's shapes are shared with the engine and the participants: one definition.
  const work = branchWorkSchemas(limits);
  const { sqlParam, statement, redisOp, redisPrecondition, kafkaMessage } = work;

  const pgStatementsBranch = z
    .object({
      participant: participantOf("postgres"),
      statements: work.statements,
    })
    .strict()
    .meta({
      description: "PostgreSQL, coordinator-executed: Verdict runs the statements at prepare.",
    });
  const pgServicePreparedBranch = z
    .object({ participant: participantOf("postgres"), servicePrepared: z.literal(true) })
    .strict()
    .meta({
      description:
        "PostgreSQL, service-prepared: the service prepares with the returned gid, then reports it.",
    });
  const redisBranch = z
    .object({
      participant: participantOf("redis"),
      ops: work.ops,
      preconditions: work.preconditions.optional(),
    })
    .strict()
    .meta({ description: "Redis: operations staged at prepare and applied at commit." });
  const kafkaBranch = z
    .object({
      participant: participantOf("kafka"),
      messages: work.messages,
    })
    .strict()
    .meta({ description: "Kafka: messages produced at commit, exactly once." });
  const enlistRequest = z.union(
    [pgStatementsBranch, pgServicePreparedBranch, redisBranch, kafkaBranch],
    { error: "a branch carries exactly one of: statements, servicePrepared, ops, messages" },
  );
  /** Begin, or a whole transaction in one request: begin, enlist each branch, commit. */
  const beginWithBranches = beginRequest
    .extend({
      branches: z
        .array(enlistRequest)
        .min(1)
        .max(limits.branchesPerTransactionMax)
        .optional()
        .meta({ description: "Enlisted in order right after the begin, as by enlistBranch." }),
      commit: z
        .boolean()
        .optional()
        .meta({
          description:
            "Commit at once and answer the outcome as commitTransaction does (200 committed, " +
            "202 committing, 409 transaction-aborted); without branches the empty " +
            "transaction commits at once.",
        }),
    })
    .strict();

  /** The body of calls that take none: `{}` (or no body at all). */
  const emptyRequest = z.object({}).strict();

  // ---- client responses ----

  const abortReason = z
    .object({
      code: z.enum(abortReasonCodes),
      message,
      branch: branchNumber.optional(),
    })
    .strict();
  const branchView = z
    .object({
      branch: branchNumber,
      branchId,
      participant,
      kind: participantKindSchema,
      state: z.enum(branchStates),
      vote: z.enum(["yes", "no"]).optional(),
      voteReason: message.optional(),
    })
    .strict();
  const transactionFields = {
    xid,
    state: z.enum(transactionStates),
    decision: z.enum(["commit", "abort"]).optional(),
    deadline: isoTime,
    labels,
    branches: z.array(branchView).max(limits.branchesPerTransactionMax),
    reason: abortReason.optional(),
    heuristic: z.enum(heuristicOutcomes).optional(),
  };
  const transactionView = z.object(transactionFields).strict();
  const withState = <S extends TransactionState>(...states: [S, ...S[]]) =>
    z
      .object({ ...transactionFields, state: z.enum(states) })
      .strict()
      .meta({ description: `The transaction, in state ${states.join(" or ")}.` });

  const enlistResponse = z
    .object({
      branch: branchNumber,
      branchId,
      participant,
      kind: participantKindSchema,
    })
    .strict();

  /** 409 `transaction-aborted`: the one error shape plus the outcome, as §5 shows it. */
  const transactionAbortedBody = errorBodySchema
    .extend({ xid, state: z.literal("aborted"), reason: abortReason })
    .strict();

  // ---- admin ----

  const adminBranchView = branchView
    .extend({
      attempts: z.int().min(0).meta({ description: "Phase-2 attempts so far." }),
      lastError: message.optional(),
      lastErrorCode: errorCode
        .optional()
        .meta({ description: "The code of the last phase-2 attempt's error." }),
      voteCode: errorCode.optional().meta({
        description: "A no vote's code: the participant's reason, or the failed call's error code.",
      }),
      acknowledgedAt: isoTime.optional(),
    })
    .strict();
  const adminTransactionSummary = z
    .object({
      ...transactionFields,
      inDoubt: z.boolean(),
      createdAt: isoTime,
    })
    .strict();
  const historyEntry = z
    .object({
      index: z.int().min(1),
      term: z.int().min(0),
      at: isoTime,
      entry: z.enum(historyEntryKinds),
      detail: message.optional(),
      principal: text(256).optional(),
    })
    .strict();
  const adminTransactionView = z
    .object({
      ...transactionFields,
      inDoubt: z.boolean(),
      createdAt: isoTime,
      principal: text(256).meta({ description: "Who began it." }),
      branches: z.array(adminBranchView).max(limits.branchesPerTransactionMax),
      history: z.array(historyEntry).max(historyEntriesMax),
      participants: z
        .array(participantBranchEntry)
        .max(limits.branchesPerTransactionMax)
        .optional()
        .meta({ description: "Each branch's participant's own view (GET only)." }),
    })
    .strict();
  const adminListQuery = z
    .object({
      state: z.enum(transactionStates).optional(),
      inDoubt: z
        .enum(["true", "false"])
        .transform((v) => v === "true")
        .optional(),
      limit: intString(1, limits.listPageSizeMax).default(limits.listPageSizeDefault),
      cursor: z.string().regex(cursorPattern).transform(parseCursor).optional().meta({
        description:
          "The `nextCursor` of the previous page: `<1 in doubt | 0>.<began at, ms>.<xid>` of its last transaction.",
      }),
    })
    .strict();
  const adminListResponse = z
    .object({
      transactions: z.array(adminTransactionSummary).max(limits.listPageSizeMax),
      nextCursor: z.string().regex(cursorPattern).nullable(),
    })
    .strict()
    .meta({ description: "In-doubt transactions first, then newest first." });
  const auditListQuery = z
    .object({
      limit: intString(1, limits.listPageSizeMax).default(limits.listPageSizeDefault),
      cursor: z
        .string()
        .regex(auditCursorPattern)
        .transform(Number)
        .optional()
        .meta({ description: "The `nextCursor` of the previous page (a record's `seq`)." }),
    })
    .strict();
  const auditRecord = z
    .object({
      seq: z.int().min(1),
      at: z.iso.datetime(),
      principal: z.string().nullable(),
      action: z.string(),
      xid: z.string().optional(),
      branch: z.int().optional(),
      reason: z.string().optional(),
      status: z.int().optional(),
      code: z.string().optional(),
      stateBefore: z.string().optional(),
      stateAfter: z.string().optional(),
    })
    .strict();
  const auditListResponse = z
    .object({
      records: z.array(auditRecord).max(limits.listPageSizeMax),
      nextCursor: z.string().regex(auditCursorPattern).nullable(),
    })
    .strict()
    .meta({ description: "Oldest first; rotated-away records are gone (docs/security.md)." });
  const resolveRequest = z
    .object({
      action: z.enum(resolveActions),
      reason: z.string().min(1).max(messageCharsMax),
      branch: branchNumber
        .optional()
        .meta({ description: "settle: the one branch to settle (default: every unfinished one)." }),
    })
    .strict()
    .meta({
      description:
        "commit: decide commit an undecided transaction, only once every branch is seen " +
        "prepared. abort: decide abort an undecided one (refused after a commit decision). " +
        "settle: record unfinished branches of a decided transaction as settled by hand; they " +
        "are retried no more. forget: drop a finished heuristic case. A repeat of what the log " +
        "already holds answers 200 and changes nothing. Audited in the log: who, when, why.",
    });
  const participantsResponse = z
    .object({
      participants: z.array(
        z
          .object({
            name: participant,
            kind: participantKindSchema,
            ok: z.boolean(),
            detail: message,
            warnings: z.array(message).max(warningsMax),
            preparedBranches: z.array(branchId).max(preparedBranchesListedMax),
            preparedBranchesTruncated: z.boolean(),
            prepared: z.array(preparedBranchEntry).max(preparedBranchesListedMax),
          })
          .strict(),
      ),
    })
    .strict();
  /** The admin event stream's one event: the decision log's applied index moved. */
  const logChangeEvent = z
    .object({ appliedIndex: z.int().min(0) })
    .strict()
    .meta({ description: "The applied index of the decision log moved: read again." });
  const clusterResponse = z
    .object({
      clusterId: z.string().min(1).max(64),
      nodeId: z.string().min(1).max(64),
      /** `local`: one node on its WAL; `etcd`: nodes over etcd (docs/etcd.md). */
      mode: z.enum(["local", "etcd"]),
      leaderId: z.string().max(64).nullable(),
      leaderUrl: z.string().max(2048).nullable(),
      term: z.int().min(0),
      /** On the leader: how long before it demotes unless a lease renewal is acknowledged. */
      leaseRemainingMs: z.int().min(0).nullable().optional(),
      /** The last index this node's log holds (0 on a standby: it holds none). */
      commitIndex: z.int().min(0),
      appliedIndex: z.int().min(0),
      snapshotIndex: z.int().min(0).nullable().optional(),
      /** `log/` keys after the snapshot (etcd, on the leader). */
      logKeys: z.int().min(0).nullable().optional(),
      members: z
        .array(
          z
            .object({
              id: z.string().min(1).max(64),
              url: z.string().max(2048),
              role: z.enum(["leader", "standby"]),
              leader: z.boolean(),
              lastSeenMs: z.int().min(0).optional(),
            })
            .strict(),
        )
        .max(membersMax),
      etcd: z
        .object({
          endpoints: z
            .array(
              z
                .object({
                  endpoint: z.string().max(256),
                  healthy: z.boolean(),
                  /** Whether this member is etcd's own Raft leader. */
                  leader: z.boolean(),
                  dbSizeBytes: z.int().min(0).optional(),
                  error: z.string().max(4000).optional(),
                })
                .strict(),
            )
            .max(16),
          leaderEndpoint: z.string().max(256).nullable(),
        })
        .strict()
        .optional(),
    })
    .strict();
  const handoverRequest = z
    .object({
      /** A live node (from `GET /admin/v1/cluster`) to hand leadership to; any, if absent. */
      to: z.string().min(1).max(64).optional(),
    })
    .strict();
  const handoverResponse = z
    .object({
      fromNodeId: z.string().min(1).max(64),
      fromTerm: z.int().min(0),
      to: z.string().max(64).nullable(),
    })
    .strict();
  const recoveryResponse = z
    .object({
      startedAt: isoTime,
      finishedAt: isoTime,
      branchesFound: z.int().min(0),
      branchesCommitted: z
        .int()
        .min(0)
        .meta({ description: "Logged for commit and verified gone from the participant." }),
      branchesRolledBack: z
        .int()
        .min(0)
        .meta({ description: "Logged for rollback and verified gone from the participant." }),
      branchesPending: z
        .int()
        .min(0)
        .meta({
          description:
            "Logged for commit or rollback but still prepared when the scan stopped waiting " +
            "(10 s); phase 2 keeps retrying them.",
        }),
      branchesLeft: z.int().min(0).meta({ description: "Live or unreachable: left for later." }),
      errors: z.array(z.object({ participant, message }).strict()).max(recoveryErrorsMax),
    })
    .strict();

  // ---- params and headers ----

  const xidParams = z.object({ xid }).strict();
  const branchParams = z
    .object({ xid, n: intString(1, limits.branchesPerTransactionMax) })
    .strict();
  const idempotencyKey = z
    .string()
    .min(1)
    .max(limits.idempotencyKeyCharsMax)
    .regex(idempotencyKeyPattern);
  // What the node accepts: any value; one that does not match the pattern is ignored.
  const traceparent = z.string().meta({
    description:
      `W3C trace context, e.g. 00-<32 hex>-<16 hex>-01 (${traceparentPattern.source}). ` +
      "Not validated: a malformed value is ignored, as the W3C spec says, and a new trace starts.",
  });

  return {
    limits,
    beginRequest: beginWithBranches,
    enlistRequest,
    pgStatementsBranch,
    pgServicePreparedBranch,
    redisBranch,
    kafkaBranch,
    statement,
    sqlParam,
    redisOp,
    redisPrecondition,
    kafkaMessage,
    labels,
    emptyRequest,
    abortReason,
    branchView,
    transactionView,
    committedView: withState("committed"),
    committingView: withState("committing"),
    preparedView: withState("prepared"),
    abortedView: withState("aborted"),
    abortingView: withState("aborting"),
    enlistResponse,
    transactionAbortedBody,
    errorBody: errorBodySchema,
    adminBranchView,
    adminTransactionSummary,
    adminTransactionView,
    historyEntry,
    adminListQuery,
    adminListResponse,
    auditListQuery,
    auditListResponse,
    resolveRequest,
    participantsResponse,
    clusterResponse,
    logChangeEvent,
    handoverRequest,
    handoverResponse,
    recoveryResponse,
    xidParams,
    branchParams,
    idempotencyKey,
    traceparent,
    ...healthSchemas,
  };
}

export type Schemas = ReturnType<typeof buildSchemas>;

/** The schemas under the default limits; types below do not depend on the limits. */
export const defaultSchemas: Schemas = buildSchemas(defaultApiLimits);

// Types for the SDK and the routes. Requests: what a caller may send (`z.input`).
export type BeginRequest = z.input<Schemas["beginRequest"]>;
export type EnlistRequest = z.input<Schemas["enlistRequest"]>;
export type PgStatementsBranch = z.input<Schemas["pgStatementsBranch"]>;
export type PgServicePreparedBranch = z.input<Schemas["pgServicePreparedBranch"]>;
export type RedisBranch = z.input<Schemas["redisBranch"]>;
export type KafkaBranch = z.input<Schemas["kafkaBranch"]>;
export type Statement = z.input<Schemas["statement"]>;
export type AuditListQuery = z.output<Schemas["auditListQuery"]>;
export type AuditListResponse = z.output<Schemas["auditListResponse"]>;
export type SqlParam = z.input<Schemas["sqlParam"]>;
export type RedisOp = z.input<Schemas["redisOp"]>;
export type RedisPrecondition = z.input<Schemas["redisPrecondition"]>;
export type KafkaMessage = z.input<Schemas["kafkaMessage"]>;
export type ResolveRequest = z.input<Schemas["resolveRequest"]>;
// Parsed requests, as the routes hand them to the engine (defaults applied).
export type BeginCommand = z.output<Schemas["beginRequest"]>;
export type EnlistCommand = z.output<Schemas["enlistRequest"]>;
export type AdminListQuery = z.output<Schemas["adminListQuery"]>;
// Responses.
export type AbortReason = z.output<Schemas["abortReason"]>;
export type BranchView = z.output<Schemas["branchView"]>;
export type TransactionView = z.output<Schemas["transactionView"]>;
export type EnlistResponse = z.output<Schemas["enlistResponse"]>;
export type TransactionAbortedBody = z.output<Schemas["transactionAbortedBody"]>;
export type AdminTransactionSummary = z.output<Schemas["adminTransactionSummary"]>;
export type AdminTransactionView = z.output<Schemas["adminTransactionView"]>;
export type AdminListResponse = z.output<Schemas["adminListResponse"]>;
export type ParticipantsResponse = z.output<Schemas["participantsResponse"]>;
export type ClusterResponse = z.output<Schemas["clusterResponse"]>;
export type HandoverResponse = z.output<Schemas["handoverResponse"]>;
export type RecoveryResponse = z.output<Schemas["recoveryResponse"]>;

const utf8 = new TextEncoder();

/** UTF-8 bytes of a branch's work, summed by the engine against `payloadBytesPerTransactionMax`. */
export function branchPayloadBytes(branch: EnlistCommand): number {
  const { participant: _participant, ...work } = branch;
  return utf8.encode(JSON.stringify(work)).length;
}
