/**
 * Verdict's own reads and writes of its schema, always on the bookkeeping role's
 * connections (never inside a branch): the branch's transaction record, the verified
 * marker, tombstones, cleanup. A marker counts only if it was written by the branch's own
 * transaction (its xid matches `branch_xact`); any other marker for the gid was forged by
 * some other transaction through `mark`, and is ignored and reported.
 */
import type pg from "pg";
import type { BranchId } from "../participant.js";
import type { SchemaTables } from "../../shared/postgres/marker-tables.js";
import { sqlStateOf } from "./errors.js";
import { query } from "./sql.js";

export interface BranchState {
  readonly prepared: boolean;
  /** A marker written by the branch's own transaction: the branch committed. */
  readonly marker: boolean;
  /** Markers for the gid written through `mark` by any other transaction. */
  readonly forgedMarkers: number;
  /** A rollback claimed the branch's marker key (`rolled-back`), or left a tombstone. */
  readonly tombstone: boolean;
}

/**
 * What a rollback's claim of the marker key found: `claimed`, its row went in; `taken`, a
 * committed row holds the key (a commit, a fence, an earlier rollback); `busy`, an
 * uncommitted row holds it (a prepared branch, or a prepare in flight) past lock_timeout.
 */
export type RollbackClaim = "claimed" | "taken" | "busy";

/** The branch as pg_prepared_xacts shows it. */
export interface PreparedRow {
  readonly owner: string;
  readonly transaction: string;
}

/** Runs one query on a bookkeeping connection (the caller classifies failures). */
export type BookkeepingQuery = <R extends pg.QueryResultRow>(
  text: string,
  values: Parameters<typeof query>[2],
) => Promise<pg.QueryResult<R>>;

export class Bookkeeping {
  constructor(
    private readonly run: BookkeepingQuery,
    private readonly t: SchemaTables,
  ) {}

  async branchState(gid: string): Promise<BranchState> {
    return this.stateRow(await this.run<BranchState>(`${this.stateQuery} select * from s`, [gid]));
  }

  /**
   * The branch's state and, only when it is fresh (not prepared, no marker, no tombstone),
   * records `xid8` as its transaction, in one statement: a repeated prepare never overwrites
   * the record of the branch it repeats.
   */
  async claim(gid: string, xid8: string): Promise<BranchState> {
    const { t } = this;
    return this.stateRow(
      await this.run<BranchState>(
        `${this.stateQuery},
         r as (insert into ${t.branchXact} (gid, xid)
               select $1, xid($2::xid8) from s where not (s.prepared or s.marker or s.tombstone)
               on conflict (gid) do update set xid = excluded.xid, recorded_at = now())
         select * from s`,
        [gid, xid8],
      ),
    );
  }

  /** `with x …, s as (the state of gid $1)`: the head of the two queries above. */
  private get stateQuery(): string {
    const { t } = this;
    return `with x as (select xid from ${t.branchXact} where gid = $1),
       s as (select
         exists (select 1 from pg_prepared_xacts where gid = $1 and database = current_database()) as prepared,
         exists (select 1 from ${t.marker} m, x where m.gid = $1 and xid(m.xid) = x.xid) as marker,
         (select count(*)::int from ${t.marker} m where m.gid = $1 and m.xid is not null
            and not exists (select 1 from x where xid(m.xid) = x.xid)) as "forgedMarkers",
         exists (select 1 from ${t.tombstone} where gid = $1)
           or exists (select 1 from ${t.marker} where gid = $1 and kind = 'rolled-back') as tombstone)`;
  }

  private stateRow(result: pg.QueryResult<BranchState>): BranchState {
    const row = result.rows[0];
    if (row === undefined) throw new Error("assertion: branch state query returned no row");
    return row;
  }

  /**
   * Claims the branch's marker key with a fence row (no xid: only Verdict writes those) before
   * a one-phase branch's outcome is read. An insert of the key still in flight is waited out
   * (under the connection's lock_timeout), so a COMMIT that was on its way either landed
   * before the read or fails on the key afterwards: the answer can never change later.
   */
  async fence(gid: string): Promise<void> {
    await this.run(
      `insert into ${this.t.marker} (gid, xid, kind) values ($1, null, 'fence')
       on conflict (gid) do nothing`,
      [gid],
    );
  }

  /**
   * The prepared branch, if it is prepared; with `record`, its transaction (the truth from
   * pg_prepared_xacts) is recorded in the same statement.
   */
  async prepared(gid: string, record: boolean): Promise<PreparedRow | undefined> {
    const p = `select owner::text as owner, transaction from pg_prepared_xacts
               where gid = $1 and database = current_database()`;
    const text = record
      ? `with p as (${p}),
           r as (insert into ${this.t.branchXact} (gid, xid) select $1, transaction from p
                 on conflict (gid) do update set xid = excluded.xid, recorded_at = now()
                 where ${this.t.branchXact}.xid <> excluded.xid)
         select owner, transaction::text as transaction from p`
      : `select owner, transaction::text as transaction from (${p}) p`;
    const { rows } = await this.run<PreparedRow>(text, [gid]);
    return rows[0];
  }

  /**
   * A rollback claims the branch's marker key with a `rolled-back` row: once it is in, no
   * prepare or one-phase commit of the branch can ever take effect (their `mark` fails on
   * the key). An uncommitted row in the way is waited for under the connection's
   * lock_timeout (55P03 → `busy`).
   */
  async claimRolledBack(gid: string): Promise<RollbackClaim> {
    try {
      const { rowCount } = await this.run(
        `insert into ${this.t.marker} (gid, xid, kind) values ($1, null, 'rolled-back')
         on conflict (gid) do nothing`,
        [gid],
      );
      return rowCount === 1 ? "claimed" : "taken";
    } catch (err) {
      if (sqlStateOf(err) === "55P03") return "busy";
      throw err;
    }
  }

  async forget(batch: readonly BranchId[]): Promise<void> {
    const { t } = this;
    await this.run(
      `with m as (delete from ${t.marker} where gid = any($1::text[])),
            x as (delete from ${t.branchXact} where gid = any($1::text[]))
       delete from ${t.tombstone} where gid = any($1::text[])`,
      [batch],
    );
  }
}
