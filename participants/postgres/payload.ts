/**
 * What a PostgreSQL branch carries, and its schema (shared with the API layer, which
 * validates enlist bodies with it). Limits here are the per-branch ceilings; the API may
 * impose lower ones.
 */
import { z } from "zod";

export const postgresPayloadLimits = {
  statementsMax: 100,
  sqlBytesMax: 64 * 1024,
  paramsMax: 1000,
  paramStringBytesMax: 1024 * 1024,
} as const;

const byteLength = (s: string): number => Buffer.byteLength(s, "utf8");

export const postgresParamSchema = z.union([
  z.string().refine((s) => byteLength(s) <= postgresPayloadLimits.paramStringBytesMax, {
    message: `a string parameter is at most ${postgresPayloadLimits.paramStringBytesMax} bytes`,
  }),
  z.number().finite(),
  z.boolean(),
  z.null(),
]);

export const postgresStatementSchema = z.strictObject({
  sql: z
    .string()
    .min(1)
    .refine((s) => byteLength(s) <= postgresPayloadLimits.sqlBytesMax, {
      message: `sql is at most ${postgresPayloadLimits.sqlBytesMax} bytes`,
    }),
  params: z.array(postgresParamSchema).max(postgresPayloadLimits.paramsMax).optional(),
  /** The statement must report exactly this many rows (affected, or returned for SELECT). */
  expectRows: z.number().int().min(0).optional(),
});

export const postgresPayloadSchema = z.discriminatedUnion("kind", [
  /** Verdict runs the statements, then the marker insert and PREPARE TRANSACTION. */
  z.strictObject({
    kind: z.literal("statements"),
    statements: z.array(postgresStatementSchema).min(1).max(postgresPayloadLimits.statementsMax),
  }),
  /** The service prepared the branch itself (prepareServiceBranch); Verdict only checks and finishes it. */
  z.strictObject({ kind: z.literal("service-prepared") }),
]);

export type PostgresParam = z.infer<typeof postgresParamSchema>;
export type PostgresStatement = z.infer<typeof postgresStatementSchema>;
export type PostgresPayload = z.infer<typeof postgresPayloadSchema>;
