/**
 * What `start` checks before a participant takes any branch: the server can hold the
 * prepared transactions Verdict may create, the marker schema exists and belongs to this
 * cluster (G6), each statement role is walled off from Verdict's role and tables
 * (docs/security.md), and the whole branch protocol works once for each role (a probe).
 * Transient failures are rethrown as they are; the caller turns them into
 * ParticipantUnavailableError.
 */
import { randomBytes } from "node:crypto";
import type pg from "pg";
import { messageOf } from "../common/errors.js";
import { ClusterMismatchError, isTransient, sqlStateOf, UnsafeServerError } from "./errors.js";
import { gidLiteral } from "../../shared/postgres/gid.js";
import type { SchemaTables } from "../../shared/postgres/marker-tables.js";
import {
  createSchemaStatements,
  ddlLockKey,
  grantStatementRole,
  schemaReadyQuery,
} from "./schema.js";
import { query } from "./sql.js";

export interface StartupContext {
  /** A connection of the bookkeeping role. */
  readonly client: pg.ClientBase;
  readonly participant: string;
  readonly schemaName: string;
  readonly tables: SchemaTables;
  readonly inFlightMax: number;
  readonly timeoutMs: number;
}

/** Start-up probes older than this were left by a crash and are rolled back. */
const staleProbeAgeMs = 60_000;

/**
 * Refuses a standby or too small `max_prepared_transactions`; returns current_database()
 * and the bookkeeping role (current_user).
 */
export async function checkServer(
  ctx: StartupContext,
): Promise<{ database: string; role: string }> {
  const { rows } = await query<{ mpt: number; recovery: boolean; database: string; role: string }>(
    ctx.client,
    `select current_setting('max_prepared_transactions')::int as mpt, pg_is_in_recovery() as recovery,
       current_database() as database, current_user::text as role`,
    [],
    ctx.timeoutMs,
  );
  const row = rows[0];
  if (row === undefined) throw new Error("assertion: settings query returned no row");
  const ids = { participant: ctx.participant };
  if (row.recovery) {
    throw new UnsafeServerError(
      `participant ${ctx.participant}: the server is a standby (in recovery); point it at the primary`,
      ids,
    );
  }
  if (row.mpt < ctx.inFlightMax) {
    throw new UnsafeServerError(
      `participant ${ctx.participant}: max_prepared_transactions is ${row.mpt}, below inFlightMax ${ctx.inFlightMax}` +
        (row.mpt === 0 ? " (0 disables PREPARE TRANSACTION)" : "") +
        `. Set max_prepared_transactions = ${Math.max(ctx.inFlightMax, 100)} (at least inFlightMax; ` +
        `max_connections is a common choice) in postgresql.conf and restart PostgreSQL, or lower inFlightMax.`,
      ids,
    );
  }
  return { database: row.database, role: row.role };
}

/**
 * The role of a statement connection. Unless statements run as the bookkeeping role by
 * configuration (`single`), refuses a role that is the bookkeeping role, a superuser, or a
 * member of the bookkeeping role (SET ROLE would lead back to it).
 */
export async function identifyStatementRole(
  ctx: StartupContext,
  statement: pg.ClientBase,
  bookkeepingRole: string,
  single: boolean,
): Promise<string> {
  const { rows } = await query<{ role: string; superuser: boolean; member: boolean }>(
    statement,
    `select current_user::text as role,
       (select rolsuper from pg_roles where rolname = current_user) as superuser,
       pg_has_role(current_user, $1::name, 'MEMBER') as member`,
    [bookkeepingRole],
    ctx.timeoutMs,
  );
  const row = rows[0];
  if (row === undefined) throw new Error("assertion: role query returned no row");
  if (single) return row.role;
  const problem =
    row.role === bookkeepingRole
      ? "is the bookkeeping role itself"
      : row.superuser
        ? "is a superuser"
        : row.member
          ? `is a member of the bookkeeping role ${bookkeepingRole} (SET ROLE would reach it)`
          : undefined;
  if (problem !== undefined) {
    throw new UnsafeServerError(
      `participant ${ctx.participant}: statement role ${row.role} ${problem}; ` +
        `give statements a login role of their own (docs/security.md)`,
      { participant: ctx.participant },
    );
  }
  return row.role;
}

/** Refuses a statement role that holds any privilege on Verdict's tables. */
export async function checkStatementRoleWalledOff(
  ctx: StartupContext,
  statement: pg.ClientBase,
): Promise<void> {
  const t = ctx.tables;
  const { rows } = await query<{ role: string; tables: string[] }>(
    statement,
    `select current_user::text as role, coalesce(array_agg(t) filter (where has_table_privilege(current_user, t,
       'SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER')), '{}') as tables
     from unnest($1::text[]) t`,
    [[t.marker, t.tombstone, t.cluster, t.branchXact]],
    ctx.timeoutMs,
  );
  const row = rows[0];
  if (row === undefined) throw new Error("assertion: privilege query returned no row");
  if (row.tables.length > 0) {
    throw new UnsafeServerError(
      `participant ${ctx.participant}: statement role ${row.role} has privileges on ${row.tables.join(", ")}; ` +
        `revoke them: only Verdict's bookkeeping role may touch its schema (docs/security.md)`,
      { participant: ctx.participant },
    );
  }
}

/**
 * Creates what is missing of the schema, lets `statementRoles` call `mark`, and registers
 * `clusterId`; refuses another cluster's schema.
 */
export async function createSchemaAndRegister(
  ctx: StartupContext,
  clusterId: string,
  statementRoles: readonly string[],
): Promise<void> {
  const { client, tables, timeoutMs: t } = ctx;
  await query(client, "begin", [], t);
  try {
    const { rows: ready } = await query<{ ready: boolean }>(
      client,
      schemaReadyQuery,
      [ctx.schemaName, statementRoles],
      t,
    );
    if (ready[0]?.ready !== true) {
      await query(client, "select pg_advisory_xact_lock($1)", [ddlLockKey], t);
      for (const ddl of createSchemaStatements(tables)) await query(client, ddl, [], t);
      for (const role of statementRoles) {
        for (const grant of grantStatementRole(tables, role)) await query(client, grant, [], t);
      }
    }
    await query(
      client,
      `insert into ${tables.cluster} (cluster_id) values ($1) on conflict do nothing`,
      [clusterId],
      t,
    );
    const { rows } = await query<{ cluster_id: string }>(
      client,
      `select cluster_id from ${tables.cluster}`,
      [],
      t,
    );
    await query(client, "commit", [], t);
    const registered = rows[0]?.cluster_id;
    if (registered === undefined)
      throw new Error("assertion: cluster registration is missing after insert");
    if (registered !== clusterId) {
      throw new ClusterMismatchError({ participant: ctx.participant }, clusterId, registered);
    }
  } catch (err) {
    await query(client, "rollback", [], t).catch(() => undefined);
    // 42xxx: syntax or access rule violation, i.e. missing privileges on the schema.
    if (!(sqlStateOf(err) ?? "").startsWith("42")) throw err;
    throw new UnsafeServerError(
      `participant ${ctx.participant}: could not create or read schema ${ctx.schemaName} (${messageOf(err)}); ` +
        `grant the role CREATE on the database, or create the schema and tables for it`,
      { participant: ctx.participant },
      { cause: err },
    );
  }
}

/**
 * Runs the whole branch protocol once on an empty transaction of `statement` (mark,
 * PREPARE, COMMIT PREPARED) and its bookkeeping on Verdict's connection (transaction
 * record, tombstone, cleanup): proves that two-phase commit works on this server and that
 * each role may do its steps, before any real branch depends on it. The probe gid carries
 * the cluster prefix, so a probe stranded by a crash is ours to roll back (here, or by
 * recovery as an unknown transaction).
 */
export async function probeTwoPhase(
  ctx: StartupContext,
  statement: pg.ClientBase,
  clusterId: string,
): Promise<void> {
  const { client, tables, timeoutMs: t } = ctx;
  const prefix = `${clusterId}:verdict-probe-`;
  const { rows: stale } = await query<{ gid: string }>(
    client,
    `select gid from pg_prepared_xacts where database = current_database() and starts_with(gid, $1)
     and prepared < now() - make_interval(secs => $2)`,
    [prefix, staleProbeAgeMs / 1000],
    t,
  );
  for (const { gid } of stale) {
    // A stale probe may belong to any of our roles: only its owner (or a superuser) may end it.
    await query(statement, `rollback prepared ${gidLiteral(gid)}`, [], t).catch(() => undefined);
  }
  const gid = `${prefix}${randomBytes(6).toString("hex")}:0`;
  let step = "the marker function";
  try {
    await query(statement, "begin", [], t);
    const { rows } = await query<{ xid: string | null }>(
      statement,
      `select ${tables.mark}($1) as xid`,
      [gid],
      t,
    );
    step = "the transaction record";
    await query(
      client,
      `insert into ${tables.branchXact} (gid, xid) values ($1, xid($2::xid8))`,
      [gid, rows[0]?.xid ?? null],
      t,
    );
    step = "PREPARE TRANSACTION";
    const prepared = await query(statement, `prepare transaction ${gidLiteral(gid)}`, [], t);
    if (prepared.command !== "PREPARE")
      throw new Error(`PREPARE TRANSACTION answered ${prepared.command}`);
    step = "COMMIT PREPARED";
    await query(statement, `commit prepared ${gidLiteral(gid)}`, [], t);
    step = "tombstone and marker cleanup";
    await query(client, `insert into ${tables.tombstone} (gid) values ($1)`, [gid], t);
    await query(
      client,
      `with m as (delete from ${tables.marker} where gid = $1), x as (delete from ${tables.branchXact} where gid = $1)
       delete from ${tables.tombstone} where gid = $1`,
      [gid],
      t,
    );
  } catch (err) {
    await query(statement, "rollback", [], t).catch(() => undefined);
    if (isTransient(err)) throw err;
    throw new UnsafeServerError(
      `participant ${ctx.participant}: two-phase probe failed at ${step}: ${messageOf(err)}`,
      { participant: ctx.participant },
      { cause: err },
    );
  }
}
