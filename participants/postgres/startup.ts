/**
 * What `start` checks before a participant takes any branch: the server can hold the
 * prepared transactions Verdict may create, the marker schema exists and belongs to this
 * cluster (G6), and the whole branch protocol works once for this role (a probe).
 * Transient failures are rethrown as they are; the caller turns them into
 * ParticipantUnavailableError.
 */
import { randomBytes } from "node:crypto";
import type pg from "pg";
import { messageOf } from "../common/errors.js";
import { ClusterMismatchError, isTransient, sqlStateOf, UnsafeServerError } from "./errors.js";
import { gidLiteral } from "../../shared/postgres/gid.js";
import type { SchemaTables } from "../../shared/postgres/marker-tables.js";
import { createSchemaStatements, ddlLockKey } from "./schema.js";
import { query } from "./sql.js";

export interface StartupContext {
  readonly client: pg.ClientBase;
  readonly participant: string;
  readonly schemaName: string;
  readonly tables: SchemaTables;
  readonly inFlightMax: number;
  readonly timeoutMs: number;
}

/** Start-up probes older than this were left by a crash and are rolled back. */
const staleProbeAgeMs = 60_000;

/** Refuses a standby or too small `max_prepared_transactions`; returns current_database(). */
export async function checkServer(ctx: StartupContext): Promise<string> {
  const { rows } = await query<{ mpt: number; recovery: boolean; database: string }>(
    ctx.client,
    `select current_setting('max_prepared_transactions')::int as mpt, pg_is_in_recovery() as recovery,
       current_database() as database`,
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
  return row.database;
}

/** Creates the schema if absent and registers `clusterId`; refuses another cluster's schema. */
export async function createSchemaAndRegister(
  ctx: StartupContext,
  clusterId: string,
): Promise<void> {
  const { client, tables, timeoutMs: t } = ctx;
  await query(client, "begin", [], t);
  try {
    await query(client, "select pg_advisory_xact_lock($1)", [ddlLockKey], t);
    for (const ddl of createSchemaStatements(tables)) await query(client, ddl, [], t);
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
 * Runs the whole branch protocol once on an empty transaction (marker insert, PREPARE,
 * COMMIT PREPARED, tombstone insert, marker and tombstone delete): proves that two-phase
 * commit works on this server and that this role may do every step, before any real
 * branch depends on it. The probe gid carries the cluster prefix, so a probe stranded by
 * a crash is ours to roll back (here, or by recovery as an unknown transaction).
 */
export async function probeTwoPhase(ctx: StartupContext, clusterId: string): Promise<void> {
  const { client, tables, timeoutMs: t } = ctx;
  const prefix = `${clusterId}:verdict-probe-`;
  const { rows: stale } = await query<{ gid: string }>(
    client,
    `select gid from pg_prepared_xacts where database = current_database() and starts_with(gid, $1)
     and prepared < now() - make_interval(secs => $2)`,
    [prefix, staleProbeAgeMs / 1000],
    t,
  );
  for (const { gid } of stale) await query(client, `rollback prepared ${gidLiteral(gid)}`, [], t);
  const gid = `${prefix}${randomBytes(6).toString("hex")}:0`;
  let step = "PREPARE TRANSACTION";
  try {
    await query(client, "begin", [], t);
    await query(client, `insert into ${tables.marker} (gid) values ($1)`, [gid], t);
    const prepared = await query(client, `prepare transaction ${gidLiteral(gid)}`, [], t);
    if (prepared.command !== "PREPARE")
      throw new Error(`PREPARE TRANSACTION answered ${prepared.command}`);
    step = "COMMIT PREPARED";
    await query(client, `commit prepared ${gidLiteral(gid)}`, [], t);
    step = "tombstone and marker cleanup";
    await query(client, `insert into ${tables.tombstone} (gid) values ($1)`, [gid], t);
    await query(
      client,
      `with m as (delete from ${tables.marker} where gid = $1) delete from ${tables.tombstone} where gid = $1`,
      [gid],
      t,
    );
  } catch (err) {
    await query(client, "rollback", [], t).catch(() => undefined);
    if (isTransient(err)) throw err;
    throw new UnsafeServerError(
      `participant ${ctx.participant}: two-phase probe failed at ${step}: ${messageOf(err)}`,
      { participant: ctx.participant },
      { cause: err },
    );
  }
}
