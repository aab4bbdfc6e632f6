/**
 * The PostgreSQL participant: branches are PostgreSQL prepared transactions
 * (ARCHITECTURE.md §2). One pg.Pool per participant; every phase-2 outcome that cannot
 * find its prepared transaction is classified from the marker (already done vs heuristic).
 */
import pg from "pg";
import type {
  BranchId,
  BranchRef,
  Health,
  OnePhaseOutcome,
  Participant,
  Phase2Context,
  Phase2Outcome,
  PrepareContext,
  Vote,
} from "../participant.js";
import { noVoteReasons, runBranchTx, type BranchTxResult } from "./branch-tx.js";
import { clusterIdProblem } from "../common/cluster-id.js";
import { Lifecycle } from "../common/lifecycle.js";
import { errorIds, messageOf, type ParticipantErrorIds } from "../common/errors.js";
import { silentLogger, type ParticipantLogger } from "../common/logger.js";
import { beforeDeadline } from "../common/time.js";
import {
  parsePostgresParticipantConfig,
  type PostgresParticipantConfig,
  type PostgresParticipantConfigInput,
} from "./config.js";
import {
  isTransient,
  ParticipantNotStartedError,
  ParticipantUnavailableError,
  Phase2ServerError,
  PostgresConfigError,
  PostgresParticipantError,
  sqlStateOf,
} from "./errors.js";
import { clusterGidPrefix, gidLiteral } from "../../shared/postgres/gid.js";
import type { PostgresPayload, PostgresStatement } from "./payload.js";
import { schemaTables, type SchemaTables } from "../../shared/postgres/marker-tables.js";
import { query } from "./sql.js";
import {
  checkServer,
  createSchemaAndRegister,
  probeTwoPhase,
  type StartupContext,
} from "./startup.js";
import { statementRefusal } from "./statements.js";

export interface PostgresParticipantDeps {
  readonly logger?: ParticipantLogger;
}

export type PostgresParticipant = Participant<PostgresPayload> &
  Required<Pick<Participant<PostgresPayload>, "commitOnePhase" | "isCommitted">>;

/** `forget` deletes in batches of at most this many ids. */
const forgetBatchMax = 500;

export function createPostgresParticipant(
  config: PostgresParticipantConfigInput,
  deps: PostgresParticipantDeps = {},
): PostgresParticipant {
  return new PostgresParticipantImpl(
    parsePostgresParticipantConfig(config),
    deps.logger ?? silentLogger,
  );
}

/** A prepare (or one-phase commit) running in this process. */
interface InFlight {
  cancelled: boolean;
  /** Backend running the branch, once known. */
  pid: number | undefined;
  /** Resolves once the branch's connection is back in the pool or destroyed. */
  readonly settled: Promise<void>;
  /** A pg_terminate_backend sent by a rollback; awaited before the connection is released. */
  termination: Promise<unknown> | undefined;
}

interface BranchState {
  readonly pid: number;
  readonly prepared: boolean;
  readonly marker: boolean;
  readonly tombstone: boolean;
}

class PostgresParticipantImpl implements PostgresParticipant {
  readonly kind = "postgres" as const;
  readonly name: string;
  private readonly pool: pg.Pool;
  private readonly tables: SchemaTables;
  /** Started with this cluster id. */
  private readonly life: Lifecycle<string>;
  /** current_database(), read at start, for messages. */
  private database = "";
  private readonly inFlight = new Map<BranchId, InFlight>();

  constructor(
    private readonly config: PostgresParticipantConfig,
    private readonly logger: ParticipantLogger,
  ) {
    this.name = config.name;
    this.life = new Lifecycle(this.name, (m) => new ParticipantNotStartedError(m, this.ids()));
    this.tables = schemaTables(config.schema);
    this.pool = new pg.Pool({
      connectionString: config.connectionString,
      host: config.host,
      port: config.port,
      database: config.database,
      user: config.user,
      password: config.password,
      max: config.poolSize,
      connectionTimeoutMillis: config.connectTimeoutMs,
      statement_timeout: config.statementTimeoutMs,
      // A coordinator cut off mid-branch must not hold locks for long.
      idle_in_transaction_session_timeout: config.prepareTimeoutMs,
      application_name: `verdict:${config.name}`.slice(0, 63),
      keepAlive: true,
    });
    // Without listeners a broken connection (idle, or checked out between queries, e.g.
    // terminated by a rollback) would raise an uncaught 'error' and crash the process.
    this.pool.on("error", (err) =>
      this.logger.warn({ participant: this.name, err }, "idle connection failed"),
    );
    this.pool.on("connect", (client) =>
      client.on("error", (err) =>
        this.logger.warn({ participant: this.name, err }, "connection failed"),
      ),
    );
  }

  async start(clusterId: string): Promise<void> {
    const clusterIdRefusal = clusterIdProblem(clusterId);
    if (clusterIdRefusal !== undefined) throw new PostgresConfigError(clusterIdRefusal, this.ids());
    this.life.assertOpen();
    await this.withClient(async (client) => {
      const ctx: StartupContext = {
        client,
        participant: this.name,
        schemaName: this.config.schema,
        tables: this.tables,
        inFlightMax: this.config.inFlightMax,
        timeoutMs: this.config.phase2TimeoutMs,
      };
      this.database = await checkServer(ctx);
      await createSchemaAndRegister(ctx, clusterId);
      await probeTwoPhase(ctx, clusterId);
    });
    this.life.started(clusterId);
    this.logger.info(
      { participant: this.name, clusterId, schema: this.config.schema },
      "postgres participant started",
    );
  }

  async prepare(branch: BranchRef<PostgresPayload>, ctx: PrepareContext): Promise<Vote> {
    this.life.assertStarted();
    gidLiteral(branch.branchId); // asserts a valid gid
    const payload = branch.payload;
    switch (payload.kind) {
      case "service-prepared":
        return this.checkServicePrepared(branch.branchId);
      case "statements": {
        const result = await this.runBranch(
          branch.branchId,
          payload.statements,
          "prepare",
          ctx.deadlineMs,
        );
        return result.kind === "vote"
          ? result.vote
          : this.answerUnknownPrepare(branch.branchId, result.cause);
      }
      default:
        return assertNever(payload);
    }
  }

  async commit(branch: BranchRef<PostgresPayload>, ctx: Phase2Context): Promise<Phase2Outcome> {
    this.life.assertStarted();
    const gid = branch.branchId;
    if (await this.finishPrepared(gid, "commit prepared")) {
      this.logger.info({ participant: this.name, gid, term: ctx.term }, "branch committed");
      return { outcome: "done" };
    }
    const state = await this.guard(gid, "reading the marker", () => this.readBranchState(gid));
    if (state.marker) return { outcome: "already-done" };
    return {
      outcome: "heuristic-rollback",
      detail:
        `COMMIT PREPARED found no prepared transaction ${gid} in database ${this.database} and no commit marker: ` +
        `it was rolled back outside this decision (e.g. a DBA's ROLLBACK PREPARED), or never prepared` +
        (state.tombstone ? "; a rollback tombstone exists for it" : ""),
    };
  }

  async rollback(branch: BranchRef<PostgresPayload>, ctx: Phase2Context): Promise<Phase2Outcome> {
    this.life.assertStarted();
    const gid = branch.branchId;
    gidLiteral(gid);
    // Durable first: from here on no prepare of this branch can succeed (across restarts).
    await this.guard(gid, "recording the tombstone", () =>
      this.phase2Query(
        gid,
        `insert into ${this.tables.tombstone} (gid) values ($1) on conflict do nothing`,
        [gid],
      ),
    );
    await this.stopInFlight(gid);
    if (await this.finishPrepared(gid, "rollback prepared")) {
      this.logger.info({ participant: this.name, gid, term: ctx.term }, "branch rolled back");
      return { outcome: "done" };
    }
    const state = await this.guard(gid, "reading the marker", () => this.readBranchState(gid));
    if (!state.marker) return { outcome: "already-done" };
    return {
      outcome: "heuristic-commit",
      detail:
        `ROLLBACK PREPARED found no prepared transaction ${gid} in database ${this.database}, ` +
        `but its commit marker is present: it was committed outside this decision`,
    };
  }

  async commitOnePhase(
    branch: BranchRef<PostgresPayload>,
    ctx: PrepareContext,
  ): Promise<OnePhaseOutcome> {
    this.life.assertStarted();
    const gid = branch.branchId;
    gidLiteral(gid);
    const payload = branch.payload;
    switch (payload.kind) {
      case "service-prepared": {
        // Already prepared by the service, marker inside: committing it now is settled by
        // the marker after a crash, exactly like a one-phase branch.
        const vote = await this.checkServicePrepared(gid);
        if (vote.vote === "no")
          return { outcome: "aborted", reason: vote.reason, detail: vote.detail };
        const outcome = await this.commit(branch, { term: 0, decidedAtMs: Date.now() });
        if (outcome.outcome === "heuristic-rollback") {
          return { outcome: "aborted", reason: noVoteReasons.rolledBack, detail: outcome.detail };
        }
        return { outcome: "committed" };
      }
      case "statements": {
        const result = await this.runBranch(gid, payload.statements, "commit", ctx.deadlineMs);
        if (result.kind === "unknown") {
          throw new ParticipantUnavailableError(
            `participant ${this.name}: the connection failed during COMMIT of ${gid}; ask isCommitted`,
            this.ids(gid),
            { cause: result.cause },
          );
        }
        const vote = result.vote;
        return vote.vote === "yes"
          ? { outcome: "committed" }
          : { outcome: "aborted", reason: vote.reason, detail: vote.detail };
      }
      default:
        return assertNever(payload);
    }
  }

  async isCommitted(branchId: BranchId): Promise<boolean> {
    this.life.assertStarted();
    return (await this.readBranchState(branchId)).marker;
  }

  async recover(): Promise<BranchId[]> {
    const clusterId = this.life.assertStarted();
    const result = await this.phase2Query<{ gid: string }>(
      undefined,
      `select gid from pg_prepared_xacts
       where database = current_database() and starts_with(gid, $1) order by prepared`,
      [clusterGidPrefix(clusterId)],
    );
    return result.rows.map((r) => r.gid as BranchId);
  }

  async forget(branchIds: readonly BranchId[]): Promise<void> {
    this.life.assertStarted();
    for (let i = 0; i < branchIds.length; i += forgetBatchMax) {
      const batch = branchIds.slice(i, i + forgetBatchMax);
      await this.phase2Query(
        undefined,
        `with m as (delete from ${this.tables.marker} where gid = any($1::text[]))
         delete from ${this.tables.tombstone} where gid = any($1::text[])`,
        [batch],
      );
    }
  }

  async health(): Promise<Health> {
    if (this.life.closed) return { ok: false, detail: "closed", warnings: [] };
    const started = Date.now();
    try {
      const client = await this.connect(started + this.config.healthTimeoutMs);
      try {
        await query(
          client,
          "select 1",
          [],
          Math.max(1, started + this.config.healthTimeoutMs - Date.now()),
        );
        client.release();
      } catch (err) {
        client.release(true);
        throw err;
      }
      return { ok: true, detail: `select 1 answered in ${Date.now() - started} ms`, warnings: [] };
    } catch (err) {
      return { ok: false, detail: messageOf(err), warnings: [] };
    }
  }

  async close(): Promise<void> {
    if (!this.life.close()) return;
    await Promise.allSettled([...this.inFlight.values()].map((f) => f.settled));
    await this.pool.end();
  }

  // ---- prepare and one-phase commit ----

  private async runBranch(
    gid: BranchId,
    statements: readonly PostgresStatement[],
    end: "prepare" | "commit",
    callerDeadlineMs: number,
  ): Promise<{ kind: "vote"; vote: Vote } | { kind: "unknown"; cause: unknown }> {
    const no = (reason: string, detail: string) => ({
      kind: "vote" as const,
      vote: { vote: "no" as const, reason, detail },
    });
    const deadlineMs = Math.min(callerDeadlineMs, Date.now() + this.config.prepareTimeoutMs);
    for (const [i, st] of statements.entries()) {
      const refusal = statementRefusal(st.sql);
      if (refusal !== undefined)
        return no(noVoteReasons.statementRefused, `statement ${i + 1}: ${refusal}`);
    }
    // One branch at a time in this process: a repeated prepare waits for the first one,
    // then finds the branch prepared. Bounded by the deadline.
    for (
      let earlier = this.inFlight.get(gid);
      earlier !== undefined;
      earlier = this.inFlight.get(gid)
    ) {
      const settled = await beforeDeadline(
        earlier.settled.then(() => true),
        deadlineMs,
      );
      if (settled === undefined) {
        return no(
          noVoteReasons.deadline,
          "the deadline passed while an earlier prepare of this branch ran",
        );
      }
    }
    let settle!: () => void;
    const entry: InFlight = {
      cancelled: false,
      pid: undefined,
      termination: undefined,
      settled: new Promise<void>((resolve) => (settle = resolve)),
    };
    this.inFlight.set(gid, entry);
    try {
      const client = await this.connect(deadlineMs).catch((err: unknown) => err as Error);
      if (client instanceof Error) {
        const reason = isTransient(client)
          ? noVoteReasons.participantUnavailable
          : noVoteReasons.deadline;
        return no(reason, `no connection: ${client.message}`);
      }
      let destroy = true;
      try {
        const state = await this.readBranchStateOn(client, gid);
        entry.pid = state.pid;
        const answer = this.answerFromState(state, end);
        if (answer !== undefined) {
          destroy = false;
          return { kind: "vote", vote: answer };
        }
        const result = await runBranchTx({
          client,
          gid,
          statements,
          end,
          deadlineMs,
          statementTimeoutMs: this.config.statementTimeoutMs,
          tables: this.tables,
          isCancelled: () => entry.cancelled,
        });
        destroy = entry.cancelled || !connectionSound(result);
        if (!destroy) destroy = !(await this.resetSession(client));
        return await this.voteFrom(result, gid, end);
      } catch (err) {
        return no(
          isTransient(err) ? noVoteReasons.participantUnavailable : noVoteReasons.statementFailed,
          messageOf(err),
        );
      } finally {
        // A rollback's pg_terminate_backend must land on this session, not on the next user of it.
        if (entry.termination !== undefined) await entry.termination.catch(() => undefined);
        client.release(destroy || entry.cancelled);
      }
    } finally {
      this.inFlight.delete(gid);
      settle();
    }
  }

  /** The vote (or one-phase answer) already settled by the branch's state, if any. */
  private answerFromState(state: BranchState, end: "prepare" | "commit"): Vote | undefined {
    if (state.tombstone)
      return { vote: "no", reason: noVoteReasons.rolledBack, detail: "the branch was rolled back" };
    // Prepared already (a repeated prepare) or committed already (its marker is visible).
    if (end === "prepare" && (state.prepared || state.marker)) return { vote: "yes" };
    if (end === "commit" && state.marker) return { vote: "yes" };
    if (end === "commit" && state.prepared) {
      return {
        vote: "no",
        reason: noVoteReasons.statementFailed,
        detail: "the branch is prepared; finish it in two phases",
      };
    }
    return undefined;
  }

  private async voteFrom(
    result: BranchTxResult,
    gid: BranchId,
    end: "prepare" | "commit",
  ): Promise<{ kind: "vote"; vote: Vote } | { kind: "unknown"; cause: unknown }> {
    switch (result.kind) {
      case "finished":
        return { kind: "vote", vote: { vote: "yes" } };
      case "refused":
        return { kind: "vote", vote: { vote: "no", reason: result.reason, detail: result.detail } };
      case "unknown":
        return result;
      case "duplicate": {
        // Another session (a racing coordinator) holds or finished this branch.
        const state = await this.readBranchState(gid).catch(() => undefined);
        const answer = state === undefined ? undefined : this.answerFromState(state, end);
        return {
          kind: "vote",
          vote: answer ?? {
            vote: "no",
            reason: noVoteReasons.statementFailed,
            detail: result.detail,
          },
        };
      }
      default:
        return assertNever(result);
    }
  }

  /** PREPARE was sent but no answer came: the prepared transaction is the truth. */
  private async answerUnknownPrepare(gid: BranchId, cause: unknown): Promise<Vote> {
    const state = await this.readBranchState(gid).catch(() => undefined);
    if (state?.prepared === true) return { vote: "yes" };
    return {
      vote: "no",
      reason: noVoteReasons.participantUnavailable,
      detail: `PREPARE TRANSACTION got no answer (${messageOf(cause)}); if it took effect, the rollback finds it`,
    };
  }

  private async checkServicePrepared(gid: BranchId): Promise<Vote> {
    if (!this.config.allowServicePrepared) {
      return {
        vote: "no",
        reason: noVoteReasons.servicePreparedDisabled,
        detail: `participant ${this.name} does not accept service-prepared branches`,
      };
    }
    let rows: { owner: string; committable: boolean; tombstone: boolean }[];
    try {
      rows = (
        await this.phase2Query<{ owner: string; committable: boolean; tombstone: boolean }>(
          gid,
          `select p.owner::text as owner,
                  p.owner = current_user or (select rolsuper from pg_roles where rolname = current_user) as committable,
                  exists (select 1 from ${this.tables.tombstone} where gid = $1) as tombstone
           from pg_prepared_xacts p where p.gid = $1 and p.database = current_database()`,
          [gid],
        )
      ).rows;
    } catch (err) {
      return { vote: "no", reason: noVoteReasons.participantUnavailable, detail: messageOf(err) };
    }
    const row = rows[0];
    if (row === undefined) {
      return {
        vote: "no",
        reason: noVoteReasons.notPrepared,
        detail: `no prepared transaction ${gid} in database ${this.database}`,
      };
    }
    if (row.tombstone)
      return { vote: "no", reason: noVoteReasons.rolledBack, detail: "the branch was rolled back" };
    if (!row.committable) {
      return {
        vote: "no",
        reason: noVoteReasons.notCommittable,
        detail: `prepared by role ${row.owner}; COMMIT PREPARED needs that role or a superuser`,
      };
    }
    return { vote: "yes" };
  }

  /** Marks an in-flight branch cancelled, terminates its backend and waits until it settled. */
  private async stopInFlight(gid: BranchId): Promise<void> {
    const entry = this.inFlight.get(gid);
    if (entry === undefined) return;
    entry.cancelled = true;
    if (entry.pid !== undefined) {
      const pid = entry.pid;
      entry.termination = this.phase2Query(gid, "select pg_terminate_backend($1)", [pid]).catch(
        (err: unknown) =>
          this.logger.warn(
            { participant: this.name, gid, pid, err },
            "could not terminate an in-flight prepare",
          ),
      );
    }
    await entry.settled;
  }

  // ---- plumbing ----

  private async readBranchState(gid: BranchId): Promise<BranchState> {
    return this.withClient((client) => this.readBranchStateOn(client, gid), gid);
  }

  private async readBranchStateOn(client: pg.ClientBase, gid: string): Promise<BranchState> {
    const { rows } = await query<BranchState>(
      client,
      `select pg_backend_pid() as pid,
         exists (select 1 from pg_prepared_xacts where gid = $1 and database = current_database()) as prepared,
         exists (select 1 from ${this.tables.marker} where gid = $1) as marker,
         exists (select 1 from ${this.tables.tombstone} where gid = $1) as tombstone`,
      [gid],
      this.config.phase2TimeoutMs,
    );
    const row = rows[0];
    if (row === undefined) throw new Error("assertion: branch state query returned no row");
    return row;
  }

  /** One autocommit query on a pooled connection; transient failures become ParticipantUnavailableError. */
  private async phase2Query<R extends pg.QueryResultRow>(
    gid: string | undefined,
    text: string,
    values: Parameters<typeof query>[2],
  ): Promise<pg.QueryResult<R>> {
    return this.withClient(
      (client) => query<R>(client, text, values, this.config.phase2TimeoutMs),
      gid,
    );
  }

  /**
   * Runs `work` on a pooled connection. The connection is destroyed, not reused, after
   * any error that is not a plain server error (its state is then unknown).
   */
  private async withClient<T>(
    work: (client: pg.PoolClient) => Promise<T>,
    gid?: string,
  ): Promise<T> {
    this.life.assertOpen();
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.unavailable(gid, err);
    }
    try {
      const result = await work(client);
      client.release();
      return result;
    } catch (err) {
      const sound = sqlStateOf(err) !== undefined && !isTransient(err);
      client.release(!sound);
      if (err instanceof PostgresParticipantError) throw err;
      throw isTransient(err) ? this.unavailable(gid, err) : err;
    }
  }

  /** A pooled connection, or a rejection once `deadlineMs` passes (a late connection is released). */
  private async connect(deadlineMs: number): Promise<pg.PoolClient> {
    this.life.assertOpen();
    const pending = this.pool.connect();
    const client = await beforeDeadline(pending, deadlineMs);
    if (client === undefined) {
      pending.then(
        (c) => c.release(),
        () => undefined,
      );
      throw new Error("the deadline passed while waiting for a pooled connection");
    }
    return client;
  }

  /** Leaves no session state behind; false if the connection should not be reused. */
  private async resetSession(client: pg.PoolClient): Promise<boolean> {
    try {
      await query(client, "discard all", [], this.config.phase2TimeoutMs);
      return true;
    } catch {
      return false;
    }
  }

  /** COMMIT/ROLLBACK PREPARED; false if the prepared transaction does not exist (42704). */
  private async finishPrepared(
    gid: BranchId,
    verb: "commit prepared" | "rollback prepared",
  ): Promise<boolean> {
    try {
      await this.phase2Query(gid, `${verb} ${gidLiteral(gid)}`, []);
      return true;
    } catch (err) {
      if (sqlStateOf(err) === "42704") return false;
      throw this.phase2Error(gid, verb.toUpperCase(), err);
    }
  }

  /** Runs a phase-2 step; any failure becomes a typed, retryable error. */
  private async guard<T>(gid: string, what: string, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      throw this.phase2Error(gid, what, err);
    }
  }

  private phase2Error(gid: string, what: string, err: unknown): Error {
    if (err instanceof PostgresParticipantError) return err;
    if (isTransient(err) || sqlStateOf(err) === undefined) return this.unavailable(gid, err);
    return new Phase2ServerError(
      `participant ${this.name}: ${what} of ${gid} failed: ${messageOf(err)}`,
      this.ids(gid),
      sqlStateOf(err) ?? "",
      err,
    );
  }

  private unavailable(gid: string | undefined, err: unknown): ParticipantUnavailableError {
    if (err instanceof ParticipantUnavailableError) return err;
    return new ParticipantUnavailableError(
      `participant ${this.name} unavailable: ${messageOf(err)}`,
      this.ids(gid),
      {
        cause: err,
      },
    );
  }

  private ids(branchId?: string): ParticipantErrorIds {
    return errorIds(this.name, branchId);
  }
}

/** Whether the connection is known to be idle and in a sane state after a branch. */
function connectionSound(result: BranchTxResult): boolean {
  if (result.kind === "unknown") return false;
  return !(result.kind === "refused" && result.reason === noVoteReasons.participantUnavailable);
}

function assertNever(value: never): never {
  throw new Error(`assertion: unexpected ${JSON.stringify(value)}`);
}
