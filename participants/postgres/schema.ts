/**
 * The participant's own tables, in one schema of the branch database (default `verdict`),
 * owned by Verdict's bookkeeping role; statement roles get USAGE on the schema and EXECUTE
 * on `mark`, nothing else (docs/security.md):
 *
 * - `marker (gid, xid, kind)`: one row per branch, its key claimed by whoever acts on the
 *   branch first (docs/architecture.md §7.1): `commit`, inserted first inside the branch's
 *   own transaction by `mark(gid)`, a SECURITY DEFINER function, so it commits exactly when
 *   the branch does (`xid` is the writing transaction); `fence`, the one-phase check's claim;
 *   `rolled-back`, a rollback's claim (both without xid). After COMMIT/ROLLBACK PREPARED
 *   answers "does not exist", a `commit` row whose xid matches `branch_xact` tells "already
 *   committed" from "rolled back"; any other marker for the gid was forged and is ignored.
 *   Rows written before `kind` existed have none: with an xid they are `commit`, without
 *   one `fence`.
 * - `branch_xact (gid, xid)`: the transaction of each branch, written on Verdict's own
 *   connection (from what `mark` returned, refreshed from pg_prepared_xacts in phase 2).
 * - `tombstone (gid)`: what rollbacks wrote before the `rolled-back` marker row; still read
 *   (and checked by `mark`), no longer written.
 * - `cluster (cluster_id)`: the one Verdict cluster this schema belongs to (G6).
 *
 * Rows of the marker, branch_xact and tombstone are deleted by `forget`. The DDL runs only
 * when the catalog shows something missing, under an advisory lock so that nodes starting
 * together do not race on CREATE … IF NOT EXISTS.
 */

import type { SchemaTables } from "../../shared/postgres/marker-tables.js";

/** A role name as a quoted identifier (role names come from `current_user`). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Arbitrary constant key of the advisory lock that serialises the DDL below. */
export const ddlLockKey = 0x76657264; // "verd"

export function createSchemaStatements(t: SchemaTables): string[] {
  return [
    `create schema if not exists ${t.schema}`,
    `create table if not exists ${t.marker} (
       gid text primary key,
       created_at timestamptz not null default now())`,
    `create table if not exists ${t.tombstone} (
       gid text primary key,
       created_at timestamptz not null default now())`,
    `create table if not exists ${t.cluster} (
       singleton boolean primary key default true check (singleton),
       cluster_id text not null,
       registered_at timestamptz not null default now())`,
    // Nullable: markers of schemas created before it have none (and never count as verified).
    `alter table ${t.marker} add column if not exists xid xid8`,
    `alter table ${t.marker} add column if not exists kind text
       check (kind in ('commit', 'fence', 'rolled-back'))`,
    `create table if not exists ${t.branchXact} (
       gid text primary key,
       xid xid not null,
       recorded_at timestamptz not null default now())`,
    // SECURITY DEFINER with a fixed search_path: runs as the bookkeeping role whatever the
    // caller put on its path. Returns null when the branch has a tombstone.
    `create or replace function ${t.mark}(branch_gid text) returns xid8
       language sql security definer set search_path = pg_catalog, pg_temp
       as $$ insert into ${t.marker} (gid, xid, kind) select branch_gid, pg_current_xact_id(), 'commit'
             where not exists (select 1 from ${t.tombstone} where gid = branch_gid)
             returning xid $$`,
    `revoke all on function ${t.markSignature} from public`,
  ];
}

/** Lets `role` call `mark` (and nothing else in the schema). */
export function grantStatementRole(t: SchemaTables, role: string): string[] {
  return [
    `grant usage on schema ${t.schema} to ${quoteIdent(role)}`,
    `grant execute on function ${t.markSignature} to ${quoteIdent(role)}`,
  ];
}

/**
 * True when every object exists and each of `$2` (role names) may call `mark`: start then
 * runs no DDL at all, so a restart never waits on locks that prepared branches hold.
 * `$1` is the schema name (unquoted).
 */
export const schemaReadyQuery = `
  select coalesce(
    to_regclass(format('%I.branch_xact', $1::text)) is not null
    and to_regclass(format('%I.cluster', $1::text)) is not null
    and to_regclass(format('%I.tombstone', $1::text)) is not null
    and (select count(*) from pg_attribute
         where attrelid = to_regclass(format('%I.marker', $1::text)) and attname in ('xid', 'kind')
           and not attisdropped) = 2
    and case when to_regprocedure(format('%I.mark(text)', $1::text)) is null then false
             else (select coalesce(bool_and(
                     has_function_privilege(r, to_regprocedure(format('%I.mark(text)', $1::text)), 'EXECUTE')
                     and has_schema_privilege(r, $1::text, 'USAGE')), true)
                   from unnest($2::text[]) r) end, false) as ready`;
