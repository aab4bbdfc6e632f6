/**
 * The API's limits, in one validated object. The schemas are built from it
 * (`buildSchemas(limits)`), the engine enforces the ones no single request can show
 * (branches and payload bytes across enlists, in-flight transactions), and the docs
 * list these defaults. Over a limit the API answers a fast typed 4xx/429, never queues.
 */
import { z } from "zod";

const KiB = 1024;
const MiB = 1024 * KiB;

const count = (max: number) => z.int().min(1).max(max);

export const apiLimitsSchema = z
  .object({
    /** Largest request body accepted; larger ones answer 413 `body-too-large` unread. */
    bodyBytesMax: count(64 * MiB).default(1 * MiB),
    /** Branches (distinct participants) in one transaction. */
    branchesPerTransactionMax: count(1000).default(16),
    /** SQL statements in one PostgreSQL branch (after enlists are merged). */
    statementsPerBranchMax: count(10_000).default(100),
    /** Characters of one SQL statement. */
    sqlCharsMax: count(1 * MiB).default(64 * KiB),
    /** Bind parameters of one SQL statement (PostgreSQL's own limit is 65535). */
    paramsPerStatementMax: count(65_535).default(1000),
    /** Redis operations in one branch (after enlists are merged). */
    opsPerBranchMax: count(10_000).default(1000),
    /** Redis preconditions in one branch. */
    preconditionsPerBranchMax: count(10_000).default(100),
    /** Values in one SADD/SREM/LPUSH/RPUSH operation. */
    valuesPerOpMax: count(100_000).default(1000),
    /** Kafka messages in one branch (after enlists are merged). */
    messagesPerBranchMax: count(10_000).default(1000),
    /** Headers of one Kafka message. */
    headersPerMessageMax: count(1000).default(32),
    /** Characters of a Redis key, hash field, Kafka key or header name. */
    keyCharsMax: count(64 * KiB).default(1 * KiB),
    /** Characters of one Redis value, SQL string parameter, Kafka value or header value. */
    valueCharsMax: count(64 * MiB).default(1 * MiB),
    /** UTF-8 bytes of all branch work (statements, ops, messages) of one transaction. */
    payloadBytesPerTransactionMax: count(256 * MiB).default(4 * MiB),
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
    callsWaitingPerTransactionMax: count(10_000).default(64),
    /** Operator resolutions waiting for their log record, node-wide; over it 503 unavailable. */
    operatorCallsWaitingMax: count(10_000).default(100),
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

/** The defaults: what a node uses when its configuration says nothing. */
export const defaultApiLimits: ApiLimits = apiLimitsSchema.parse({});
