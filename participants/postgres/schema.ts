/**
 * The participant's own tables, in one schema of the branch database (default `verdict`):
 *
 * - `marker (gid)`: inserted inside every branch's transaction, so it commits exactly when
 *   the branch does. After COMMIT/ROLLBACK PREPARED answers "does not exist", its presence
 *   tells "already committed" from "rolled back by someone else".
 * - `tombstone (gid)`: committed on its own before ROLLBACK PREPARED, so a late or
 *   repeated prepare of a rolled-back branch votes no even after a restart.
 * - `cluster (cluster_id)`: the one Verdict cluster this schema belongs to (G6).
 *
 * Rows of the first two are deleted by `forget`. The DDL runs under an advisory lock so
 * that nodes starting together do not race on CREATE … IF NOT EXISTS.
 */

import type { SchemaTables } from "../../shared/postgres/marker-tables.js";

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
  ];
}
