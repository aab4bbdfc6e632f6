/**
 * Every limit of the node, in one module (docs/configuration.md lists them):
 * - `apiLimitsSchema`: the configurable ones (the config file's `limits`), each with a default
 *   and a ceiling, and the relations between them refined at load;
 * - `fixedLimits`: bounds no deployment needs to change; `branchWorkCeilings`, the ceilings
 *   of the branch-work limits (participants re-validate work with them); `responseLimits`,
 *   the bounds of what the API answers.
 * The relations that involve fixed limits are asserted when this module loads
 * (`fixedRelationProblems`): a build that breaks one never starts. Over a limit the node answers
 * a fast typed refusal (4xx/429/503), never queues.
 *
 * A leaf module: it imports nothing of the node, so the API, the engine's shell, the
 * participants and `shared/branch-work.ts` all take their numbers from here.
 */
import { z } from "zod";

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Ceilings of the limits on one branch's work: the most any configuration may allow, and what
 * a participant accepts when it re-validates work (shared/branch-work.ts).
 */
export const branchWorkCeilings = {
  statementsPerBranchMax: 10_000,
  sqlCharsMax: 1 * MiB,
  /** PostgreSQL's own limit of bind parameters. */
  paramsPerStatementMax: 65_535,
  opsPerBranchMax: 10_000,
  preconditionsPerBranchMax: 10_000,
  valuesPerOpMax: 100_000,
  messagesPerBranchMax: 10_000,
  headersPerMessageMax: 1000,
  keyCharsMax: 64 * KiB,
  valueCharsMax: 64 * MiB,
} as const;

/** The limits one branch's work is validated against (configured, or the ceilings). */
export type BranchWorkBounds = { readonly [K in keyof typeof branchWorkCeilings]: number };

/** Ceilings of configurable limits that a relation with a fixed limit involves. */
const payloadBytesPerTransactionCeiling = 256 * MiB;
const callsWaitingPerTransactionCeiling = 10_000;
const operatorCallsWaitingCeiling = 10_000;
const recordOverheadBytes = 128 * KiB;

export const fixedLimits = {
  /** Transactions one `forget` record drops (the engine forgets in batches of at most this). */
  forgetBatchMax: 1000,
  /** Characters of an xid (`xidPattern`); bounds what a `forget` record of a batch takes. */
  xidCharsMax: 64,
  /** PostgreSQL limits a gid to 200 bytes; branch ids are ASCII. */
  branchIdCharsMax: 200,
  /** Kafka partition index a message may name. */
  kafkaPartitionMax: 1_000_000,
  /**
   * A PostgreSQL or Redis participant's `inFlightMax` (sessions, staged branches) follows
   * `inFlightTransactionsMax`, capped here (PostgreSQL's `max_prepared_transactions` must cover it).
   */
  participantInFlightMax: 100_000,
  /** Bytes a log record takes beyond its branches' work: header, ids, labels, keys, a forget batch. */
  recordOverheadBytes,
  /** Bytes the log dump (`verdict log`) reads in one record: any record any configuration writes. */
  recordBytesReadMax: 2 * payloadBytesPerTransactionCeiling + recordOverheadBytes,
  /**
   * Engine replies the driver awaits at once (client calls, operator resolutions, recovery scans);
   * over it a call is refused `503 unavailable` before it reaches the engine.
   */
  driverRepliesWaitingMax: 100_000,
  /**
   * Log appends the driver has in flight plus durable entries held for in-order apply (the reorder
   * buffer); over it an append is refused (`append-failed`), so the proposer hears a typed failure.
   */
  driverAppendsInFlightMax: 20_000,
  /** Bytes of a Redis branch's staged program (one script argument; Redis allows 512 MiB). */
  redisStagedBytesMax: 256 * MiB,
  /** Record bytes of one Kafka branch's messages (the broker's default request cap is 100 MiB). */
  kafkaBranchBytesMax: 64 * MiB,
  /** Bytes of the acknowledgements one `acks` record carries (as JSON); the rest go in the next. */
  acksBytesPerRecordMax: 64 * KiB,
  /** On shutdown, how long the aborts of never-prepared transactions get to become durable. */
  abandonWaitMsMax: 5_000,
  /** Appends the local log (WAL) queues or writes at once; over it it refuses (LogFullError). */
  walPendingAppendsMax: 10_000,
} as const;

/**
 * Bounds of what the API answers: each response schema states them (so the OpenAPI document
 * publishes them) and each producer cuts what it reports to them, from this one place.
 */
export const responseLimits = {
  /** Characters of a message, detail, warning or reason in an answer. */
  messageCharsMax: 4000,
  /** Participants in a health or participants answer: as many as a configuration may hold. */
  participantsMax: 100,
  /** Warnings listed per participant. */
  warningsMax: 100,
  /** Prepared branches listed per participant (the answer says when it cut the list). */
  preparedBranchesListedMax: 1000,
  /** Participant errors listed in a recovery answer. */
  recoveryErrorsMax: 100,
  /** Log entries in one transaction's admin history. */
  historyEntriesMax: 10_000,
  /** Members in the cluster answer. */
  membersMax: 64,
} as const;

export type FixedLimits = { readonly [K in keyof typeof fixedLimits]: number };

const count = (max: number) => z.int().min(1).max(max);
const c = branchWorkCeilings;

export const apiLimitsSchema = z
  .object({
    /** Largest request body accepted; larger ones answer 413 `body-too-large` unread. */
    bodyBytesMax: count(64 * MiB).default(1 * MiB),
    /** Branches (distinct participants) in one transaction. */
    branchesPerTransactionMax: count(1000).default(16),
    /** SQL statements in one PostgreSQL branch (after enlists are merged). */
    statementsPerBranchMax: count(c.statementsPerBranchMax).default(100),
    /** Characters of one SQL statement. */
    sqlCharsMax: count(c.sqlCharsMax).default(64 * KiB),
    /** Bind parameters of one SQL statement (PostgreSQL's own limit is 65535). */
    paramsPerStatementMax: count(c.paramsPerStatementMax).default(1000),
    /** Redis operations in one branch (after enlists are merged). */
    opsPerBranchMax: count(c.opsPerBranchMax).default(1000),
    /** Redis preconditions in one branch. */
    preconditionsPerBranchMax: count(c.preconditionsPerBranchMax).default(100),
    /** Values in one SADD/SREM/LPUSH/RPUSH operation. */
    valuesPerOpMax: count(c.valuesPerOpMax).default(1000),
    /** Kafka messages in one branch (after enlists are merged). */
    messagesPerBranchMax: count(c.messagesPerBranchMax).default(1000),
    /** Headers of one Kafka message. */
    headersPerMessageMax: count(c.headersPerMessageMax).default(32),
    /** Characters of a Redis key, hash field, Kafka key or header name. */
    keyCharsMax: count(c.keyCharsMax).default(1 * KiB),
    /** Characters of one Redis value, SQL string parameter, Kafka value or header value. */
    valueCharsMax: count(c.valueCharsMax).default(1 * MiB),
    /** UTF-8 bytes of all branch work (statements, ops, messages) of one transaction. */
    payloadBytesPerTransactionMax: count(payloadBytesPerTransactionCeiling).default(4 * MiB),
    timeoutMsMin: count(60 * 60 * 1000).default(100),
    timeoutMsMax: count(24 * 60 * 60 * 1000).default(10 * 60 * 1000),
    timeoutMsDefault: count(24 * 60 * 60 * 1000).default(30_000),
    /** Labels on one transaction. */
    labelsMax: count(1000).default(16),
    /** Characters of one label name or value. */
    labelCharsMax: count(4 * KiB).default(128),
    /** Characters of an Idempotency-Key header. */
    idempotencyKeyCharsMax: count(1024).default(128),
    /**
     * Idempotency keys held, oldest dropped first. Only calls that changed something hold one
     * (a refused call holds none); at least `inFlightTransactionsMax`, so no live begin loses
     * its key to newer ones.
     */
    idempotencyKeysMax: count(10_000_000).default(100_000),
    /** How long a key is held after its first use (on the engine's clock); then dropped. */
    idempotencyKeyAgeMsMax: count(7 * 24 * 60 * 60 * 1000).default(60 * 60 * 1000),
    /** Client calls (prepare, commit, abort) waiting on one transaction; over it 503 unavailable. */
    callsWaitingPerTransactionMax: count(callsWaitingPerTransactionCeiling).default(64),
    /** Operator resolutions waiting for their log record, node-wide; over it 503 unavailable. */
    operatorCallsWaitingMax: count(operatorCallsWaitingCeiling).default(100),
    /** Transactions begun and not yet decided; over it `POST /v1/transactions` answers 429. */
    inFlightTransactionsMax: count(10_000_000).default(10_000),
    /**
     * Undecided transactions one principal (token) may hold; over it its begin answers 429, so
     * one client cannot take every slot of `inFlightTransactionsMax`. Absent: half of it.
     */
    inFlightTransactionsPerPrincipalMax: count(10_000_000).optional(),
    /** Requests per second one principal may make, on average (a token bucket's refill). */
    requestsPerSecondPerPrincipal: count(1_000_000).default(1000),
    /** Requests one principal may make at once before the rate applies (the bucket's size). */
    requestBurstPerPrincipal: count(10_000_000).default(2000),
    /** Page size of the admin transaction list. */
    listPageSizeMax: count(10_000).default(500),
    listPageSizeDefault: count(10_000).default(100),
    /**
     * Transaction event streams (`GET /v1/transactions/{xid}/events`) open at once on a node;
     * the next answers 429 `too-many-streams`. Each holds a connection (`connectionsMax`).
     */
    eventStreamsMax: count(100_000).default(1000),
    /** Transaction event streams one principal (token) may hold at once; over it 429. */
    eventStreamsPerPrincipalMax: count(100_000).default(16),
  })
  .strict()
  .refine((l) => l.timeoutMsMin <= l.timeoutMsDefault && l.timeoutMsDefault <= l.timeoutMsMax, {
    message: "timeoutMsMin <= timeoutMsDefault <= timeoutMsMax must hold",
    path: ["timeoutMsDefault"],
  })
  .refine((l) => l.listPageSizeDefault <= l.listPageSizeMax, {
    message: "listPageSizeDefault must not exceed listPageSizeMax",
    path: ["listPageSizeDefault"],
  })
  .refine((l) => l.idempotencyKeysMax >= l.inFlightTransactionsMax, {
    message: "idempotencyKeysMax must be at least inFlightTransactionsMax",
    path: ["idempotencyKeysMax"],
  })
  .refine((l) => (l.inFlightTransactionsPerPrincipalMax ?? 0) <= l.inFlightTransactionsMax, {
    message: "inFlightTransactionsPerPrincipalMax must not exceed inFlightTransactionsMax",
    path: ["inFlightTransactionsPerPrincipalMax"],
  })
  .refine((l) => l.eventStreamsPerPrincipalMax <= l.eventStreamsMax, {
    message: "eventStreamsPerPrincipalMax must not exceed eventStreamsMax",
    path: ["eventStreamsPerPrincipalMax"],
  })
  .refine((l) => l.valueCharsMax <= l.bodyBytesMax, {
    message: "valueCharsMax must not exceed bodyBytesMax (such a value could never arrive)",
    path: ["valueCharsMax"],
  });

export type ApiLimits = z.output<typeof apiLimitsSchema>;

/** One principal's share of the in-flight transactions: as configured, else half of them. */
export function inFlightPerPrincipalMax(l: ApiLimits): number {
  return (
    l.inFlightTransactionsPerPrincipalMax ?? Math.max(1, Math.ceil(l.inFlightTransactionsMax / 2))
  );
}

/**
 * Bytes one log record may take: a `preparing` record carries every branch's work (counted as
 * its JSON, `payloadBytesPerTransactionMax`), re-encoded with its field names and escapes (at
 * most twice the bytes), plus the record's own fields.
 */
export function recordBytesMax(l: Pick<ApiLimits, "payloadBytesPerTransactionMax">): number {
  return 2 * l.payloadBytesPerTransactionMax + fixedLimits.recordOverheadBytes;
}

/** A PostgreSQL or Redis participant's `inFlightMax` when its entry does not set one. */
export function participantInFlightMax(l: Pick<ApiLimits, "inFlightTransactionsMax">): number {
  return Math.min(l.inFlightTransactionsMax, fixedLimits.participantInFlightMax);
}

/** The defaults: what a node uses when its configuration says nothing. */
export const defaultApiLimits: ApiLimits = apiLimitsSchema.parse({});

/**
 * Problems with the relations that involve fixed limits (empty when all hold). Asserted below
 * at load; exported so a test can show that each relation is checked.
 */
export function fixedRelationProblems(f: FixedLimits = fixedLimits): string[] {
  const problems: string[] = [];
  const need = (holds: boolean, relation: string) => holds || problems.push(relation);
  // A forget record of a full batch (each xid quoted, comma-separated) fits any record's overhead.
  need(
    f.forgetBatchMax * (f.xidCharsMax + 3) < f.recordOverheadBytes,
    "forgetBatchMax × (xidCharsMax + 3) < recordOverheadBytes",
  );
  // The dump reads every record a node may write, at the largest payload allowed.
  need(
    2 * payloadBytesPerTransactionCeiling + f.recordOverheadBytes <= f.recordBytesReadMax,
    "recordBytesMax at the payload ceiling <= recordBytesReadMax",
  );
  // Every append the WAL may hold in flight fits the driver's in-order buffer: durable entries
  // waiting behind an earlier one never make the driver refuse what the log accepted.
  need(
    f.walPendingAppendsMax <= f.driverAppendsInFlightMax,
    "walPendingAppendsMax <= driverAppendsInFlightMax",
  );
  // Any one ack (its detail cut to an answer's message) fits a batch, and a full batch plus the
  // record's own fields fits any record. JSON may write a character in up to 6 bytes (\uXXXX).
  const ackBytesMax = 200 + f.xidCharsMax + 6 * responseLimits.messageCharsMax;
  need(ackBytesMax <= f.acksBytesPerRecordMax, "one ack at its largest <= acksBytesPerRecordMax");
  need(
    f.acksBytesPerRecordMax + 1024 <= f.recordOverheadBytes,
    "acksBytesPerRecordMax + 1 KiB <= recordOverheadBytes",
  );
  // One transaction's waiting calls and every operator's always fit among the driver's waiting
  // replies, whatever the configuration: only many transactions at once can fill it.
  need(
    callsWaitingPerTransactionCeiling + operatorCallsWaitingCeiling < f.driverRepliesWaitingMax,
    "callsWaitingPerTransactionMax + operatorCallsWaitingMax (ceilings) < driverRepliesWaitingMax",
  );
  return problems;
}

const broken = fixedRelationProblems();
if (broken.length > 0) throw new Error(`limits: relations broken: ${broken.join("; ")}`);
