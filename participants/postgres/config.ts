/**
 * Configuration of one PostgreSQL participant: one database, Verdict's bookkeeping role
 * (the connection fields at the top level) and the statement roles that run branch
 * statements (docs/security.md). Validated once; every limit has a default and a ceiling.
 */
import { z } from "zod";
import { participantNameSchema, parseParticipantConfig } from "../common/config.js";
import { PostgresConfigError } from "./errors.js";
import { schemaNamePattern } from "../../shared/postgres/marker-tables.js";
import { tlsFilesSchema } from "../../shared/tls.js";

/** Connection-string parameters that configure TLS in `pg` (they override `tls` if both were given). */
const sslParams = ["sslmode", "sslrootcert", "sslcert", "sslkey", "ssl"];

/** Whether a connection string sets TLS itself (`?sslmode=verify-full&sslrootcert=…`). */
export function setsTls(connectionString: string | undefined): boolean {
  if (connectionString === undefined) return false;
  try {
    const params = new URL(connectionString).searchParams;
    return sslParams.some((p) => params.has(p));
  } catch {
    return false;
  }
}

/**
 * A login role that runs coordinator-executed statements: a full connection string, or a
 * user and password with the participant's own host, port and database.
 */
const statementRoleSchema = z
  .strictObject({
    connectionString: z.string().min(1).optional(),
    user: z.string().min(1).max(63).optional(),
    password: z.string().optional(),
  })
  .refine((r) => (r.connectionString === undefined) !== (r.user === undefined), {
    message: "give either connectionString or user (with password)",
  });

export type StatementRoleConfig = z.output<typeof statementRoleSchema>;

export const postgresParticipantConfigSchema = z
  .strictObject({
    /** Participant name used in the API (`"pg-orders"`), logs and errors. */
    name: participantNameSchema,
    /** Either a connection string, or the separate fields below. */
    connectionString: z.string().min(1).optional(),
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    database: z.string().min(1).optional(),
    user: z.string().min(1).optional(),
    password: z.string().optional(),
    poolSize: z.number().int().min(1).max(200).default(10),
    /**
     * Connections per statement role that only finish prepared transactions, apart from the
     * branches' pool: phase 2 never waits for a connection behind prepares it would unblock.
     */
    finishPoolSize: z.number().int().min(1).max(50).default(2),
    connectTimeoutMs: z.number().int().min(100).max(60_000).default(5_000),
    /** Ceiling for one statement of a branch; the prepare deadline may cut it shorter. */
    statementTimeoutMs: z.number().int().min(10).max(600_000).default(30_000),
    /**
     * lock_timeout of a branch's statements (0: none): a lock wait longer than this votes no,
     * so a lock cycle across databases (prepares run in parallel) ends fast, not at the deadline.
     */
    lockTimeoutMs: z.number().int().min(0).max(600_000).default(1_000),
    /**
     * lock_timeout of a branch's marker insert, the first thing a prepare or one-phase
     * commit does: how long it waits for another actor holding the branch's key (a deposed
     * coordinator's prepare, a prepared branch) before it re-reads the branch and backs off.
     */
    markerLockTimeoutMs: z.number().int().min(10).max(60_000).default(200),
    /** Ceiling for a whole prepare, whatever the transaction's deadline says. */
    prepareTimeoutMs: z.number().int().min(100).max(600_000).default(60_000),
    /** Client-side bound on one phase-2, recovery, forget or start query. */
    phase2TimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
    healthTimeoutMs: z.number().int().min(50).max(60_000).default(2_000),
    /** Schema of the marker, tombstone and cluster tables (one Verdict cluster per schema). */
    schema: z.string().regex(schemaNamePattern).default("verdict"),
    /** Prepared branches Verdict may hold at once; `max_prepared_transactions` must allow it. */
    inFlightMax: z.number().int().min(1).max(100_000).default(100),
    /** Accept service-prepared (XA-style) branches. */
    allowServicePrepared: z.boolean().default(true),
    /**
     * Roles that run branch statements: `default`, and per principal (token id). Absent:
     * statements run as the bookkeeping role (unsafe; refused by a production profile
     * unless `unsafeSingleRole` is set).
     */
    statementRoles: z
      .strictObject({
        default: statementRoleSchema,
        byPrincipal: z.record(z.string().min(1).max(128), statementRoleSchema).default({}),
      })
      .optional(),
    /** Acknowledges that client statements run as Verdict's own role (docs/security.md). */
    unsafeSingleRole: z.boolean().default(false),
    /** Connections of the bookkeeping role (markers, tombstones, phase-2 reads). */
    bookkeepingPoolSize: z.number().int().min(1).max(200).default(5),
    /** lock_timeout of every bookkeeping statement: a branch's locks cannot stall Verdict. */
    bookkeepingLockTimeoutMs: z.number().int().min(10).max(60_000).default(1_000),
    /** statement_timeout of every bookkeeping statement. */
    bookkeepingStatementTimeoutMs: z.number().int().min(100).max(600_000).default(5_000),
    /** Phase 2 of a branch failing for longer than this makes health report degraded. */
    phase2StuckAfterMs: z.number().int().min(100).max(3_600_000).default(30_000),
    /**
     * TLS for every pool (bookkeeping and statement roles), always `verify-full`: the
     * server's certificate must chain to `caFile` and name the host (docs/tls-backends.md).
     */
    tls: tlsFilesSchema.optional(),
  })
  .refine((c) => (c.connectionString === undefined) !== (c.database === undefined), {
    message: "give either connectionString or database (with host, port, user, password)",
  })
  .refine((c) => c.tls === undefined || !setsTls(c.connectionString), {
    message:
      "give TLS either in the connection string (sslmode, sslrootcert, …) or in tls, not both",
  })
  .refine((c) => !(c.statementRoles !== undefined && c.unsafeSingleRole), {
    message: "unsafeSingleRole contradicts statementRoles: give one or the other",
  });

export type PostgresParticipantConfigInput = z.input<typeof postgresParticipantConfigSchema>;
export type PostgresParticipantConfig = z.output<typeof postgresParticipantConfigSchema>;

export function parsePostgresParticipantConfig(input: unknown): PostgresParticipantConfig {
  return parseParticipantConfig(
    "postgres",
    postgresParticipantConfigSchema,
    input,
    PostgresConfigError,
  );
}
