/**
 * The PostgreSQL participant's own view of a branch, in one read-only statement on a
 * bookkeeping connection: its `pg_prepared_xacts` row, the locks the prepared transaction
 * holds and the backends waiting on them, its marker and its tombstone.
 *
 * A prepared transaction's locks have no pid; they share the virtual transaction of the one
 * `transactionid` lock on its own xid (`-1/<xid>` after a restart, the dummy backend's id
 * before), which is how they are found. Backends see other roles' queries only with
 * pg_read_all_stats; otherwise PostgreSQL answers `<insufficient privilege>`, shown as is.
 */
import type { SchemaTables } from "../../shared/postgres/marker-tables.js";
import {
  clipText,
  inspectListMax,
  inspectTextCharsMax,
  type PostgresBranchView,
} from "../inspect.js";
import type { BookkeepingQuery } from "./bookkeeping.js";

interface Row {
  prepared_at_ms: string | null;
  owner: string | null;
  database: string | null;
  transaction: string | null;
  locks_held: number;
  relations: string[];
  blocked: { pid: number; user: string | null; waiting_ms: string; query: string | null }[];
  marker_at_ms: string | null;
  marker_verified: boolean;
  forged: number;
  tombstone_at_ms: string | null;
  now_ms: string;
}

export async function inspectPostgresBranch(
  run: BookkeepingQuery,
  t: SchemaTables,
  gid: string,
): Promise<PostgresBranchView> {
  const { rows } = await run<Row>(
    `with p as (select prepared, owner::text as owner, database::text as database, transaction
                from pg_prepared_xacts where gid = $1 and database = current_database()),
       v as (select l.virtualtransaction from pg_locks l, p
             where l.locktype = 'transactionid' and l.transactionid = p.transaction
               and l.pid is null and l.granted),
       h as (select l.* from pg_locks l, v
             where l.virtualtransaction = v.virtualtransaction and l.pid is null and l.granted),
       w as (select distinct w.pid from pg_locks w join h
               on w.locktype = h.locktype
              and w.database is not distinct from h.database
              and w.relation is not distinct from h.relation
              and w.page is not distinct from h.page
              and w.tuple is not distinct from h.tuple
              and w.transactionid is not distinct from h.transactionid
              and w.classid is not distinct from h.classid
              and w.objid is not distinct from h.objid
              and w.objsubid is not distinct from h.objsubid
             where not w.granted),
       x as (select xid from ${t.branchXact} where gid = $1)
     select
       (select (extract(epoch from prepared) * 1000)::bigint::text from p) as prepared_at_ms,
       (select owner from p) as owner,
       (select database from p) as database,
       (select transaction::text from p) as transaction,
       (select count(*)::int from h) as locks_held,
       array(select distinct relation::regclass::text from h where relation is not null
             order by 1 limit $2) as relations,
       coalesce((select json_agg(b) from (
          select a.pid, a.usename as user,
            ((extract(epoch from now() - coalesce(a.state_change, now())) * 1000)::bigint)::text as waiting_ms,
            left(a.query, $3) as query
          from pg_stat_activity a join w on a.pid = w.pid order by a.pid limit $2) b), '[]') as blocked,
       (select (extract(epoch from m.created_at) * 1000)::bigint::text from ${t.marker} m
          where m.gid = $1) as marker_at_ms,
       exists (select 1 from ${t.marker} m, x where m.gid = $1 and xid(m.xid) = x.xid) as marker_verified,
       (select count(*)::int from ${t.marker} m where m.gid = $1 and m.xid is not null
          and not exists (select 1 from x where xid(m.xid) = x.xid)) as forged,
       (select (extract(epoch from min(created_at)) * 1000)::bigint::text from (
          select created_at from ${t.tombstone} where gid = $1
          union all select created_at from ${t.marker} where gid = $1 and kind = 'rolled-back') r)
         as tombstone_at_ms,
       (extract(epoch from now()) * 1000)::bigint::text as now_ms`,
    [gid, inspectListMax, inspectTextCharsMax],
  );
  const row = rows[0];
  if (row === undefined) throw new Error("assertion: the inspect query returned no row");
  return viewOf(row);
}

function viewOf(row: Row): PostgresBranchView {
  const nowMs = Number(row.now_ms);
  const prepared =
    row.prepared_at_ms === null
      ? null
      : {
          preparedAtMs: Number(row.prepared_at_ms),
          owner: row.owner ?? "",
          database: row.database ?? "",
          transaction: row.transaction ?? "",
        };
  const markerPresent = row.marker_verified;
  return {
    kind: "postgres",
    holds: prepared
      ? "prepared"
      : markerPresent
        ? "committed"
        : row.tombstone_at_ms
          ? "rolled-back"
          : "absent",
    prepared,
    locks: {
      held: row.locks_held,
      heldForMs: prepared ? Math.max(0, nowMs - prepared.preparedAtMs) : 0,
      relations: row.relations.map(clipText),
      blocked: row.blocked.map((b) => ({
        pid: b.pid,
        user: b.user ?? "",
        waitingMs: Number(b.waiting_ms),
        query: clipText(b.query ?? ""),
      })),
    },
    marker: {
      present: markerPresent,
      ...(markerPresent && row.marker_at_ms !== null ? { atMs: Number(row.marker_at_ms) } : {}),
      forged: row.forged,
    },
    tombstone: {
      present: row.tombstone_at_ms !== null,
      ...(row.tombstone_at_ms === null ? {} : { atMs: Number(row.tombstone_at_ms) }),
    },
  };
}
