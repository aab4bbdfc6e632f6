/**
 * One branch's work, defined once: SQL statements (PostgreSQL), operations (Redis) or messages
 * (Kafka), as one discriminated union on `kind`. Everything that handles work takes it from
 * here: the API builds its enlist schemas from `branchWorkSchemas(limits)` (under the configured
 * limits), the engine records and merges `BranchWork` values, and each participant re-validates
 * what it is handed with `workAtCeilings` (the ceilings no configuration may exceed).
 *
 * Neutral: it imports only the limits module, never the API, the engine or a participant, so
 * every one of them may import it (eslint.config.js bans participants and config from the API).
 */
import { z } from "zod";
import {
  branchWorkCeilings,
  fixedLimits,
  type BranchWorkBounds,
} from "../coordinator/config/limits.js";

/** Kafka's own rule for topic names. */
export const kafkaTopicPattern = /^[A-Za-z0-9._-]{1,249}$/;

/** The schemas of branch work under `b`: strict objects, every string and list bounded. */
export function branchWorkSchemas(b: BranchWorkBounds) {
  const text = (max: number) => z.string().max(max);
  const key = text(b.keyCharsMax).min(1);
  const value = text(b.valueCharsMax);

  const sqlParam = z.union([value, z.number(), z.boolean(), z.null()]);
  const statement = z
    .object({
      sql: z.string().min(1).max(b.sqlCharsMax),
      params: z.array(sqlParam).max(b.paramsPerStatementMax).optional(),
      expectRows: z.int().min(0).optional().meta({
        description: "Rows the statement must affect (or return), else the branch votes no.",
      }),
    })
    .strict();

  const values = z.array(value).min(1).max(b.valuesPerOpMax);
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
    z.object({ op: z.literal("sadd"), key, values }).strict(),
    z.object({ op: z.literal("srem"), key, values }).strict(),
    z.object({ op: z.literal("lpush"), key, values }).strict(),
    z.object({ op: z.literal("rpush"), key, values }).strict(),
  ]);
  const redisPrecondition = z.union(
    [
      z.object({ key, equals: value }).strict(),
      z.object({ key, absent: z.literal(true) }).strict(),
      z.object({ key, exists: z.literal(true) }).strict(),
    ],
    { error: "a precondition is one of {key, equals}, {key, absent: true}, {key, exists: true}" },
  );

  // The API's JSON parser refuses a `__proto__` key anywhere (prototype poisoning): say so here.
  const headerName = z
    .string()
    .min(1)
    .max(b.keyCharsMax)
    .refine((k) => k !== "__proto__", "__proto__ is not a header name")
    .meta({ not: { const: "__proto__" } });
  const kafkaMessage = z
    .object({
      topic: z.string().regex(kafkaTopicPattern),
      key: text(b.keyCharsMax).optional(),
      value,
      headers: z
        .record(headerName, value)
        .refine((h) => Object.keys(h).length <= b.headersPerMessageMax, {
          message: `at most ${b.headersPerMessageMax} headers`,
        })
        .meta({ maxProperties: b.headersPerMessageMax })
        .optional(),
      partition: z.int().min(0).max(fixedLimits.kafkaPartitionMax).optional(),
    })
    .strict();

  // The work lists of a branch: what the API's enlist bodies carry, and what a merge appends.
  const statements = z.array(statement).min(1).max(b.statementsPerBranchMax);
  const ops = z.array(redisOp).min(1).max(b.opsPerBranchMax);
  const preconditions = z.array(redisPrecondition).max(b.preconditionsPerBranchMax);
  const messages = z.array(kafkaMessage).min(1).max(b.messagesPerBranchMax);

  /** PostgreSQL, coordinator-executed: Verdict runs the statements, the marker, PREPARE. */
  const statementsWork = z.object({ kind: z.literal("statements"), statements }).strict();
  /** PostgreSQL, service-prepared: the service prepared the branch; Verdict checks, finishes it. */
  const servicePreparedWork = z.object({ kind: z.literal("service-prepared") }).strict();
  /** Redis: operations staged at prepare (preconditions checked then), applied at commit. */
  const opsWork = z.object({ kind: z.literal("ops"), ops, preconditions }).strict();
  /** Kafka: messages produced at commit, exactly once. */
  const messagesWork = z.object({ kind: z.literal("messages"), messages }).strict();
  const branchWork = z.discriminatedUnion("kind", [
    statementsWork,
    servicePreparedWork,
    opsWork,
    messagesWork,
  ]);

  return {
    sqlParam,
    statement,
    redisOp,
    redisPrecondition,
    kafkaMessage,
    statements,
    ops,
    preconditions,
    messages,
    statementsWork,
    servicePreparedWork,
    opsWork,
    messagesWork,
    branchWork,
  };
}

export type BranchWorkSchemas = ReturnType<typeof branchWorkSchemas>;

/** The schemas at the ceilings: what a participant accepts, whatever the node's configuration. */
export const workAtCeilings: BranchWorkSchemas = branchWorkSchemas(branchWorkCeilings);

// The types do not depend on the bounds.
export type BranchWork = z.output<BranchWorkSchemas["branchWork"]>;
export type WorkKind = BranchWork["kind"];
export type StatementsWork = z.output<BranchWorkSchemas["statementsWork"]>;
export type ServicePreparedWork = z.output<BranchWorkSchemas["servicePreparedWork"]>;
export type PostgresWork = StatementsWork | ServicePreparedWork;
export type RedisWork = z.output<BranchWorkSchemas["opsWork"]>;
export type KafkaWork = z.output<BranchWorkSchemas["messagesWork"]>;
export type Statement = z.output<BranchWorkSchemas["statement"]>;
export type SqlParam = z.output<BranchWorkSchemas["sqlParam"]>;
export type RedisOp = z.output<BranchWorkSchemas["redisOp"]>;
export type RedisPrecondition = z.output<BranchWorkSchemas["redisPrecondition"]>;
export type KafkaMessage = z.output<BranchWorkSchemas["kafkaMessage"]>;

/**
 * A branch recovery found prepared at a participant for a transaction whose record does not
 * carry it: only its id is known, never its work. Phase 2 needs no work for such a branch.
 */
export type OrphanWork = { readonly kind: "orphan" };

/**
 * Work no one needs any more (coordinator/core/payload.ts `releaseWork`): the branch is
 * prepared at its participant and decided, or Kafka's messages were produced. Phase 2 needs
 * only its id, so the table and its snapshots keep no work of decided branches.
 */
export type ReleasedWork = { readonly kind: "released" };

/**
 * What a recorded branch carries: its work, nothing but its id (found by recovery), or its
 * id once its work was released.
 */
export type RecordedWork = BranchWork | OrphanWork | ReleasedWork;

/** The per-branch limit that `work` (merged from several enlists) breaks, if any. */
export function workOverLimit(
  b: BranchWorkBounds,
  work: BranchWork,
): { limit: keyof BranchWorkBounds; max: number } | undefined {
  const over = (n: number, limit: keyof BranchWorkBounds) =>
    n > b[limit] ? { limit, max: b[limit] } : undefined;
  switch (work.kind) {
    case "statements":
      return over(work.statements.length, "statementsPerBranchMax");
    case "service-prepared":
      return undefined;
    case "ops":
      return (
        over(work.ops.length, "opsPerBranchMax") ??
        over(work.preconditions.length, "preconditionsPerBranchMax")
      );
    case "messages":
      return over(work.messages.length, "messagesPerBranchMax");
  }
}
