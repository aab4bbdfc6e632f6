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
import { errorBodySchema } from "./errors.js";
import { healthSchemas } from "./health.js";
import type { ApiLimits } from "./limits.js";
import { defaultApiLimits } from "./limits.js";

/** xid: URL-safe, no `:` (the branch id separator). */
export const xidPattern = /^[A-Za-z0-9_-]{1,64}$/;
/** Participant names, as configured. */
export const participantNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Kafka's own rule for topic names. */
export const kafkaTopicPattern = /^[A-Za-z0-9._-]{1,249}$/;
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
/** PostgreSQL limits a gid to 200 bytes; branch ids are ASCII. */
export const branchIdCharsMax = 200;
const messageCharsMax = 4000;
const membersMax = 64;
const recoveryErrorsMax = 100;
const historyEntriesMax = 10_000;
const preparedBranchesListedMax = 1000;

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

/** A cursor of the admin list: the decimal offset of the page's first entry. */
export const cursorPattern = /^(0|[1-9][0-9]{0,14})$/;

/**
 * `participants`: the node's participants, so that the enlist schema (and the document the
 * node serves) names exactly the participants it accepts; without them (a document built
 * without a node) any well-formed name.
 */
export function buildSchemas(limits: ApiLimits, participants?: ParticipantNames) {
  const text = (max: number) => z.string().max(max);
  const message = text(messageCharsMax);
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
  const key = text(limits.keyCharsMax).min(1);
  const value = text(limits.valueCharsMax);
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

  const sqlParam = z.union([text(limits.valueCharsMax), z.number(), z.boolean(), z.null()]);
  const statement = z
    .object({
      sql: z.string().min(1).max(limits.sqlCharsMax),
      params: z.array(sqlParam).max(limits.paramsPerStatementMax).optional(),
      expectRows: z.int().min(0).optional().meta({
        description: "Rows the statement must affect (or return), else the branch votes no.",
      }),
    })
    .strict();

  const redisOp = z.discriminatedUnion("op", [
    z
      .object({
        op: z.literal("set"),
        key,
        value,
        ttlMs: z.int().min(1).optional().meta({ description: "Expiry (SET … PX)." }),
      })
      .strict(),
    z.object({ op: z.literal("del"), key }).strict(),
    z.object({ op: z.literal("incrby"), key, by: z.int() }).strict(),
    z.object({ op: z.literal("hset"), key, field: key, value }).strict(),
    z.object({ op: z.literal("hdel"), key, field: key }).strict(),
    ...(["sadd", "srem", "lpush", "rpush"] as const).map((op) =>
      z
        .object({
          op: z.literal(op),
          key,
          values: z.array(value).min(1).max(limits.valuesPerOpMax),
        })
        .strict(),
    ),
  ]);
  const redisPrecondition = z.union(
    [
      z.object({ key, equals: value }).strict(),
      z.object({ key, absent: z.literal(true) }).strict(),
      z.object({ key, exists: z.literal(true) }).strict(),
    ],
    { error: "a precondition is one of {key, equals}, {key, absent: true}, {key, exists: true}" },
  );
  // The JSON parser refuses a `__proto__` key anywhere (prototype poisoning): say so here.
  const headerName = z
    .string()
    .min(1)
    .max(limits.keyCharsMax)
    .refine((k) => k !== "__proto__", "__proto__ is not a header name")
    .meta({ not: { const: "__proto__" } });
  const kafkaMessage = z
    .object({
      topic: z.string().regex(kafkaTopicPattern),
      key: text(limits.keyCharsMax).optional(),
      value,
      headers: z
        .record(headerName, value)
        .refine((h) => Object.keys(h).length <= limits.headersPerMessageMax, {
          message: `at most ${limits.headersPerMessageMax} headers`,
        })
        .meta({ maxProperties: limits.headersPerMessageMax })
        .optional(),
      partition: z.int().min(0).max(1_000_000).optional(),
    })
    .strict();

  const pgStatementsBranch = z
    .object({
      participant: participantOf("postgres"),
      statements: z.array(statement).min(1).max(limits.statementsPerBranchMax),
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
      ops: z.array(redisOp).min(1).max(limits.opsPerBranchMax),
      preconditions: z.array(redisPrecondition).max(limits.preconditionsPerBranchMax).optional(),
    })
    .strict()
    .meta({ description: "Redis: operations staged at prepare and applied at commit." });
  const kafkaBranch = z
    .object({
      participant: participantOf("kafka"),
      messages: z.array(kafkaMessage).min(1).max(limits.messagesPerBranchMax),
    })
    .strict()
    .meta({ description: "Kafka: messages produced at commit, exactly once." });
  const enlistRequest = z.union(
    [pgStatementsBranch, pgServicePreparedBranch, redisBranch, kafkaBranch],
    { error: "a branch carries exactly one of: statements, servicePrepared, ops, messages" },
  );

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
      cursor: z
        .string()
        .regex(cursorPattern)
        .transform(Number)
        .optional()
        .meta({ description: "The `nextCursor` of the previous page." }),
    })
    .strict();
  const adminListResponse = z
    .object({
      transactions: z.array(adminTransactionSummary).max(limits.listPageSizeMax),
      nextCursor: z.string().regex(cursorPattern).nullable(),
    })
    .strict()
    .meta({ description: "In-doubt transactions first, then newest first." });
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
            warnings: z.array(message).max(100),
            preparedBranches: z.array(branchId).max(preparedBranchesListedMax),
            preparedBranchesTruncated: z.boolean(),
          })
          .strict(),
      ),
    })
    .strict();
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
    beginRequest,
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
    resolveRequest,
    participantsResponse,
    clusterResponse,
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
