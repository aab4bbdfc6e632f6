/**
 * The PostgreSQL participant: branches are PostgreSQL prepared transactions
 * (docs/architecture.md §7.1). Branch statements run as statement roles, Verdict's own
 * bookkeeping as its own role (roles.ts, docs/security.md); every phase-2 outcome that
 * cannot find its prepared transaction is classified from the branch's verified marker
 * (already done vs heuristic).
 */
import pg from "pg";
import type {
  BranchId,
  BranchView,
  BranchRef,
  Health,
  OnePhaseOutcome,
  Participant,
  Phase2Context,
  Phase2Outcome,
  PrepareContext,
  Vote,
} from "../participant.js";
import { Bookkeeping, type BookkeepingQuery, type BranchState } from "./bookkeeping.js";
import { inspectPostgresBranch } from "./inspect.js";
import { noVoteReasons, runBranchTx, type BranchTx, type BranchTxResult } from "./branch-tx.js";
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
import { Phase2Watch } from "./phase2-watch.js";
import { checkHandshakes, createPools, type Pools, type StatementPool } from "./roles.js";
import { query } from "./sql.js";
import {
  checkServer,
  checkStatementRoleWalledOff,
  createSchemaAndRegister,
  identifyStatementRole,
  probeTwoPhase,
  type StartupContext,
} from "./startup.js";
import { statementRefusal } from "./statements.js";

export interface PostgresParticipantDeps {
  readonly logger?: ParticipantLogger;
  /**
   * The clock of the participant's cheap early deadline checks (default Date.now). The
   * deciding check runs on the server's clock; tests run this one behind to show it.
   */
  readonly nowMs?: () => number;
}

export type PostgresParticipant = Participant<PostgresPayload> &
  Required<Pick<Participant<PostgresPayload>, "commitOnePhase" | "isCommitted">>;

/** `forget` deletes in batches of at most this many ids. */
const forgetBatchMax = 500;

/** Waits between attempts of a prepare whose marker key another actor holds (doubling). */
const keyHeldWaitFirstMs = 50;
const keyHeldWaitMaxMs = 500;

export function createPostgresParticipant(
  config: PostgresParticipantConfigInput,
  deps: PostgresParticipantDeps = {},
): PostgresParticipant {
  return new PostgresParticipantImpl(
    parsePostgresParticipantConfig(config),
    deps.logger ?? silentLogger,
    deps.nowMs ?? Date.now,
  );
}

/** A prepare (or one-phase commit) running in this process. */
interface InFlight {
  cancelled: boolean;
  /** Backend running the branch, once known, and the pool (role) it belongs to. */
  pid: number | undefined;
  pool: pg.Pool | undefined;
  /** Resolves once the branch's connection is back in the pool or destroyed. */
  readonly settled: Promise<void>;
  /** A pg_terminate_backend sent by a rollback; awaited before the connection is released. */
  termination: Promise<unknown> | undefined;
}

class PostgresParticipantImpl implements PostgresParticipant {
  readonly kind = "postgres" as const;
  readonly name: string;
  private readonly pools: Pools;
  private readonly bookkeeping: Bookkeeping;
  private readonly bookkeepingRun: BookkeepingQuery;
  /** Pools by role name, filled at start: phase 2 runs as the role that prepared. */
  private readonly poolsByRole = new Map<string, pg.Pool>();
  private readonly watch: Phase2Watch;
  /** Markers seen for a gid but not written by its transaction (forged), since start. */
  private forgedMarkersIgnored = 0;
  private readonly tables: SchemaTables;
  /** Started with this cluster id. */
  private readonly life: Lifecycle<string>;
  /** current_database(), read at start, for messages. */
  private database = "";
  private readonly inFlight = new Map<BranchId, InFlight>();

  constructor(
    private readonly config: PostgresParticipantConfig,
    private readonly logger: ParticipantLogger,
    private readonly nowMs: () => number,
  ) {
    this.name = config.name;
    this.life = new Lifecycle(this.name, (m) => new ParticipantNotStartedError(m, this.ids()));
    this.tables = schemaTables(config.schema);
    this.pools = createPools(config, logger);
    this.bookkeepingRun = (text, values) =>
      this.withClient(this.pools.bookkeeping, (c) =>
        query(c, text, values, this.config.phase2TimeoutMs),
      );
    this.bookkeeping = new Bookkeeping(this.bookkeepingRun, this.tables);
    this.watch = new Phase2Watch(Math.max(config.inFlightMax, 100));
  }

  private get singleRole(): boolean {
    return this.config.statementRoles === undefined;
  }

  async start(clusterId: string): Promise<void> {
    const clusterIdRefusal = clusterIdProblem(clusterId);
    if (clusterIdRefusal !== undefined) throw new PostgresConfigError(clusterIdRefusal, this.ids());
    this.life.assertOpen();
    await checkHandshakes(this.pools, this.name);
    await this.withClient(this.pools.bookkeeping, async (client) => {
      const ctx: StartupContext = {
        client,
        participant: this.name,
        schemaName: this.config.schema,
        tables: this.tables,
        inFlightMax: this.config.inFlightMax,
        timeoutMs: this.config.phase2TimeoutMs,
      };
      const server = await checkServer(ctx);
      this.database = server.database;
      const statementPools = [...this.pools.byLabel.values()];
      for (const sp of statementPools) {
        sp.role = await this.withClient(sp.pool, (c) =>
          identifyStatementRole(ctx, c, server.role, this.singleRole),
        );
      }
      const roles = [...new Set(statementPools.map((sp) => sp.role))];
      await createSchemaAndRegister(
        ctx,
        clusterId,
        roles.filter((r) => r !== server.role),
      );
      for (const role of roles) {
        const sp = statementPools.find((p) => p.role === role);
        if (sp === undefined) throw new Error("assertion: a statement role without a pool");
        this.poolsByRole.set(role, sp.finishPool);
        await this.withClient(sp.pool, async (c) => {
          if (!this.singleRole) await checkStatementRoleWalledOff(ctx, c);
          await probeTwoPhase(ctx, c, clusterId);
        });
      }
      if (!this.poolsByRole.has(server.role))
        this.poolsByRole.set(server.role, this.pools.bookkeeping);
    });
    this.life.started(clusterId);
    if (this.singleRole) {
      this.logger.error(
        { participant: this.name },
        "UNSAFE: no statementRoles configured; client statements run as Verdict's own bookkeeping role " +
          "and can read and change its markers and tombstones (docs/security.md)",
      );
    }
    this.logger.info(
      {
        participant: this.name,
        clusterId,
        schema: this.config.schema,
        roles: [...this.poolsByRole.keys()],
      },
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
        const result = await this.runBranch(branch.branchId, payload.statements, "prepare", ctx);
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
    return this.watched(gid, () => this.commitWatched(gid, ctx));
  }

  private async commitWatched(gid: BranchId, ctx: Phase2Context): Promise<Phase2Outcome> {
    // Records the transaction from pg_prepared_xacts first: COMMIT PREPARED is never sent
    // for a branch whose marker could not be verified afterwards.
    const row = await this.guard(gid, "recording the prepared transaction", () =>
      this.bookkeeping.prepared(gid, true),
    );
    if (row !== undefined && (await this.finishPrepared(gid, row.owner, "commit prepared"))) {
      this.logger.info({ participant: this.name, gid, term: ctx.term }, "branch committed");
      return { outcome: "done" };
    }
    const state = await this.guard(gid, "reading the marker", () => this.branchState(gid));
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
    return this.watched(gid, () => this.rollbackWatched(gid, ctx));
  }

  /**
   * One actor per branch (docs/architecture.md §7.1): a rollback answers only once its
   * `rolled-back` row holds the branch's marker key, so no prepare or one-phase commit of
   * the branch, from any process, can take effect after the answer. A prepared branch is
   * rolled back first (that frees the key its marker holds); a key still held past the
   * lock_timeout is a branch prepared meanwhile (rolled back, then claimed again) or a
   * prepare in flight elsewhere: the call fails and the engine retries it.
   */
  private async rollbackWatched(gid: BranchId, ctx: Phase2Context): Promise<Phase2Outcome> {
    await this.stopInFlight(gid);
    let rolledBack = await this.rollbackIfPrepared(gid);
    const claimKey = () =>
      this.guard(gid, "claiming the marker key", () => this.bookkeeping.claimRolledBack(gid));
    let claim = await claimKey();
    if (claim === "busy") {
      rolledBack = (await this.rollbackIfPrepared(gid)) || rolledBack;
      claim = await claimKey();
    }
    if (claim === "busy") {
      throw new Phase2ServerError(
        `participant ${this.name}: the marker key of ${gid} is held by a prepare in flight ` +
          `elsewhere (lock timeout); the rollback answers once it has claimed the key`,
        this.ids(gid),
        "55P03",
        undefined,
      );
    }
    if (rolledBack) {
      this.logger.info({ participant: this.name, gid, term: ctx.term }, "branch rolled back");
      return { outcome: "done" };
    }
    return claim === "claimed" ? { outcome: "already-done" } : this.rollbackNotFound(gid);
  }

  /** ROLLBACK PREPARED if the branch is prepared; false if it is not (or no longer). */
  private async rollbackIfPrepared(gid: BranchId): Promise<boolean> {
    // Recording the transaction is best effort here: a rollback must not wait for it.
    const row = await this.guard(gid, "reading the prepared transaction", async () => {
      try {
        return await this.bookkeeping.prepared(gid, true);
      } catch (err) {
        if (isTransient(err) && sqlStateOf(err) !== "57014") throw err;
        return this.bookkeeping.prepared(gid, false);
      }
    });
    return row !== undefined && (await this.finishPrepared(gid, row.owner, "rollback prepared"));
  }

  private async rollbackNotFound(gid: BranchId): Promise<Phase2Outcome> {
    const state = await this.guard(gid, "reading the marker", () => this.branchState(gid));
    if (!state.marker) return { outcome: "already-done" };
    return {
      outcome: "heuristic-commit",
      detail:
        `ROLLBACK PREPARED found no prepared transaction ${gid} in database ${this.database}, ` +
        `but its commit marker is present: it was committed outside this decision`,
    };
  }

  /** Runs a phase-2 call and keeps track of branches whose phase 2 keeps failing. */
  private async watched<T>(gid: BranchId, work: () => Promise<T>): Promise<T> {
    try {
      const result = await work();
      this.watch.succeeded(gid);
      return result;
    } catch (err) {
      this.watch.failed(gid, messageOf(err), Date.now());
      throw err;
    }
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
        const result = await this.runBranch(gid, payload.statements, "commit", ctx);
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
    await this.guard(branchId, "fencing the marker key", () => this.bookkeeping.fence(branchId));
    return (await this.branchState(branchId)).marker;
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

  async inspect(branchId: BranchId): Promise<BranchView> {
    this.life.assertStarted();
    return this.guard(branchId, "inspecting", () =>
      inspectPostgresBranch(this.bookkeepingRun, this.tables, branchId),
    );
  }

  async forget(branchIds: readonly BranchId[]): Promise<void> {
    this.life.assertStarted();
    for (let i = 0; i < branchIds.length; i += forgetBatchMax) {
      await this.bookkeeping.forget(branchIds.slice(i, i + forgetBatchMax));
    }
  }

  async health(): Promise<Health> {
    if (this.life.closed) return { ok: false, detail: "closed", warnings: [] };
    const warnings = this.healthWarnings();
    const stuck = this.watch.stuck(Date.now(), this.config.phase2StuckAfterMs);
    if (stuck !== undefined) {
      return {
        ok: false,
        detail:
          `degraded: phase 2 of branch ${stuck.gid} has been failing for ${Date.now() - stuck.sinceMs} ms ` +
          `(the oldest stuck branch): ${stuck.detail}`,
        warnings,
      };
    }
    const started = Date.now();
    try {
      const client = await this.connect(
        this.pools.bookkeeping,
        this.nowMs() + this.config.healthTimeoutMs,
      );
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
      return { ok: true, detail: `select 1 answered in ${Date.now() - started} ms`, warnings };
    } catch (err) {
      return { ok: false, detail: messageOf(err), warnings };
    }
  }

  private healthWarnings(): string[] {
    const warnings: string[] = [];
    if (this.singleRole) {
      warnings.push(
        "UNSAFE single role: client statements run as Verdict's bookkeeping role (configure statementRoles, docs/security.md)",
      );
    }
    if (this.forgedMarkersIgnored > 0) {
      warnings.push(
        `${this.forgedMarkersIgnored} marker(s) not written by their branch's transaction were ignored since start (forged?)`,
      );
    }
    return warnings;
  }

  async close(): Promise<void> {
    if (!this.life.close()) return;
    await Promise.allSettled([...this.inFlight.values()].map((f) => f.settled));
    await Promise.allSettled([
      this.pools.bookkeeping.end(),
      ...[...this.pools.byLabel.values()].flatMap((sp) => [sp.pool.end(), sp.finishPool.end()]),
    ]);
  }

  // ---- prepare and one-phase commit ----

  private async runBranch(
    gid: BranchId,
    statements: readonly PostgresStatement[],
    end: "prepare" | "commit",
    ctx: PrepareContext,
  ): Promise<{ kind: "vote"; vote: Vote } | { kind: "unknown"; cause: unknown }> {
    const no = (reason: string, detail: string) => ({
      kind: "vote" as const,
      vote: { vote: "no" as const, reason, detail },
    });
    const deadlineMs = Math.min(ctx.deadlineMs, this.nowMs() + this.config.prepareTimeoutMs);
    const statementPool = this.statementPoolFor(ctx.principal);
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
        this.nowMs,
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
      pool: statementPool.pool,
      termination: undefined,
      settled: new Promise<void>((resolve) => (settle = resolve)),
    };
    this.inFlight.set(gid, entry);
    try {
      const client = await this.connect(statementPool.pool, deadlineMs).catch(
        (err: unknown) => err as Error,
      );
      if (client instanceof Error) {
        const reason = isTransient(client)
          ? noVoteReasons.participantUnavailable
          : noVoteReasons.deadline;
        return no(reason, `no connection: ${client.message}`);
      }
      let destroy = true;
      try {
        entry.pid = processIdOf(client);
        const tx: BranchTx = {
          client,
          gid,
          statements,
          end,
          deadlineMs,
          serverDeadlineMs: ctx.deadlineMs,
          nowMs: this.nowMs,
          statementTimeoutMs: this.config.statementTimeoutMs,
          lockTimeoutMs: this.config.lockTimeoutMs,
          markerLockTimeoutMs: this.config.markerLockTimeoutMs,
          tables: this.tables,
          isCancelled: () => entry.cancelled,
          claim: async (xid) => this.answerFromState(await this.claimBranch(gid, xid), end),
        };
        let result = await runBranchTx(tx);
        for (
          let waitMs = keyHeldWaitFirstMs;
          result.kind === "busy";
          waitMs = Math.min(2 * waitMs, keyHeldWaitMaxMs)
        ) {
          const answer = await this.whileKeyHeld(gid, end, { deadlineMs, waitMs, entry }, result);
          if (answer !== undefined) {
            destroy = !(await this.resetSession(client));
            return { kind: "vote", vote: answer };
          }
          result = await runBranchTx(tx);
        }
        if (result.kind === "settled") {
          // A repeat: its abandoned first flight may wait on the locks of the branch it repeats.
          this.terminateBackend(entry, gid);
          return { kind: "vote", vote: result.vote };
        }
        destroy = entry.cancelled || !connectionSound(result);
        if (!destroy && !sessionResetBy(result)) destroy = !(await this.resetSession(client));
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

  /**
   * Another actor holds the branch's marker key: a deposed coordinator's prepare still in
   * flight, a prepared branch, a rollback or a fence being written. Re-reads the branch: its
   * state may settle the answer (prepared already: yes; rolled back: no); otherwise waits
   * `waitMs` and the caller tries again, until the deadline.
   */
  private async whileKeyHeld(
    gid: BranchId,
    end: "prepare" | "commit",
    at: { readonly deadlineMs: number; readonly waitMs: number; readonly entry: InFlight },
    busy: { readonly detail: string },
  ): Promise<Vote | undefined> {
    const state = await this.branchState(gid).catch(() => undefined);
    const answer = state === undefined ? undefined : this.answerFromState(state, end);
    if (answer !== undefined) return answer;
    if (at.entry.cancelled) {
      return {
        vote: "no",
        reason: noVoteReasons.rolledBack,
        detail: "a rollback of the branch arrived while another actor held its marker key",
      };
    }
    if (this.nowMs() + at.waitMs >= at.deadlineMs) {
      return {
        vote: "no",
        reason: noVoteReasons.deadline,
        detail: `another actor held the branch's marker key until the deadline (${busy.detail})`,
      };
    }
    await new Promise((resolve) => setTimeout(resolve, at.waitMs));
    return undefined;
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
    result: Exclude<BranchTxResult, { kind: "busy" }>,
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
      case "settled":
        return { kind: "vote", vote: result.vote };
      case "duplicate": {
        // Another session (a racing coordinator) holds or finished this branch.
        const state = await this.branchState(gid).catch(() => undefined);
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
    const state = await this.branchState(gid).catch(() => undefined);
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
    let row: { owner: string } | undefined;
    let state: BranchState;
    try {
      row = await this.bookkeeping.prepared(gid, true);
      state = await this.branchState(gid);
    } catch (err) {
      return { vote: "no", reason: noVoteReasons.participantUnavailable, detail: messageOf(err) };
    }
    if (row === undefined) {
      return {
        vote: "no",
        reason: noVoteReasons.notPrepared,
        detail: `no prepared transaction ${gid} in database ${this.database}`,
      };
    }
    if (state.tombstone)
      return { vote: "no", reason: noVoteReasons.rolledBack, detail: "the branch was rolled back" };
    if (!this.poolsByRole.has(row.owner)) {
      return {
        vote: "no",
        reason: noVoteReasons.notCommittable,
        detail: `prepared by role ${row.owner}; COMMIT PREPARED needs that role, and this participant has no connection as it`,
      };
    }
    return { vote: "yes" };
  }

  /** Marks an in-flight branch cancelled, terminates its backend and waits until it settled. */
  private async stopInFlight(gid: BranchId): Promise<void> {
    const entry = this.inFlight.get(gid);
    if (entry === undefined) return;
    entry.cancelled = true;
    this.terminateBackend(entry, gid);
    await entry.settled;
  }

  /** Sends pg_terminate_backend for the branch's session; awaited before its connection is released. */
  private terminateBackend(entry: InFlight, gid: BranchId): void {
    if (entry.pid === undefined || entry.pool === undefined || entry.termination !== undefined) {
      return;
    }
    const pid = entry.pid;
    // From the branch's own role: a statement role may signal only its own sessions.
    entry.termination = this.withClient(
      entry.pool,
      (c) => query(c, "select pg_terminate_backend($1)", [pid], this.config.phase2TimeoutMs),
      gid,
    ).catch((err: unknown) =>
      this.logger.warn(
        { participant: this.name, gid, pid, err },
        "could not terminate an in-flight prepare",
      ),
    );
  }

  // ---- plumbing ----

  /** The branch's state on Verdict's connection; forged markers are counted and logged. */
  private async branchState(gid: BranchId): Promise<BranchState> {
    return this.counted(gid, await this.bookkeeping.branchState(gid));
  }

  /** The state, and the transaction `xid8` recorded if the branch is fresh (Bookkeeping.claim). */
  private async claimBranch(gid: BranchId, xid8: string): Promise<BranchState> {
    return this.counted(gid, await this.bookkeeping.claim(gid, xid8));
  }

  private counted(gid: BranchId, state: BranchState): BranchState {
    if (state.forgedMarkers > 0) {
      this.forgedMarkersIgnored += state.forgedMarkers;
      this.logger.warn(
        { participant: this.name, gid, forgedMarkers: state.forgedMarkers },
        "ignored marker(s) for this branch not written by its own transaction (forged?)",
      );
    }
    return state;
  }

  /** The statement pool of `principal`, or the default one. */
  private statementPoolFor(principal: string | undefined): StatementPool {
    const sp =
      (principal === undefined ? undefined : this.pools.byLabel.get(principal)) ??
      this.pools.byLabel.get("default");
    if (sp === undefined) throw new Error("assertion: no default statement pool");
    return sp;
  }

  /** One autocommit query on a bookkeeping connection; transient failures become ParticipantUnavailableError. */
  private async phase2Query<R extends pg.QueryResultRow>(
    gid: string | undefined,
    text: string,
    values: Parameters<typeof query>[2],
  ): Promise<pg.QueryResult<R>> {
    return this.withClient(
      this.pools.bookkeeping,
      (client) => query<R>(client, text, values, this.config.phase2TimeoutMs),
      gid,
    );
  }

  /**
   * Runs `work` on a pooled connection. The connection is destroyed, not reused, after
   * any error that is not a plain server error (its state is then unknown).
   */
  private async withClient<T>(
    pool: pg.Pool,
    work: (client: pg.PoolClient) => Promise<T>,
    gid?: string,
  ): Promise<T> {
    this.life.assertOpen();
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
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

  /**
   * A pooled connection, or a rejection once `deadlineMs` (on `nowMs`) passes (a late
   * connection is released).
   */
  private async connect(pool: pg.Pool, deadlineMs: number): Promise<pg.PoolClient> {
    this.life.assertOpen();
    const pending = pool.connect();
    const client = await beforeDeadline(pending, deadlineMs, this.nowMs);
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

  /**
   * COMMIT/ROLLBACK PREPARED as `owner`, the role that prepared it (PostgreSQL requires it);
   * false if the prepared transaction does not exist (42704).
   */
  private async finishPrepared(
    gid: BranchId,
    owner: string,
    verb: "commit prepared" | "rollback prepared",
  ): Promise<boolean> {
    const pool = this.poolsByRole.get(owner);
    if (pool === undefined) {
      throw new Phase2ServerError(
        `participant ${this.name}: ${gid} was prepared by role ${owner}, and this participant has no ` +
          `connection as it (COMMIT/ROLLBACK PREPARED needs the preparing role); configure it as a statement role`,
        this.ids(gid),
        "42501",
        undefined,
      );
    }
    try {
      await this.withClient(
        pool,
        (c) => query(c, `${verb} ${gidLiteral(gid)}`, [], this.config.phase2TimeoutMs),
        gid,
      );
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

/** Whether the DISCARD ALL sent behind PREPARE or COMMIT answered. */
function sessionResetBy(result: BranchTxResult): boolean {
  return (result.kind === "finished" || result.kind === "refused") && result.sessionReset === true;
}

/** Whether the connection is known to be idle and in a sane state after a branch. */
function connectionSound(result: BranchTxResult): boolean {
  if (result.kind === "unknown") return false;
  return !(result.kind === "refused" && result.reason === noVoteReasons.participantUnavailable);
}

/** The backend pid of a connection (pg sets it at connect; absent from @types/pg). */
function processIdOf(client: pg.PoolClient): number | undefined {
  const pid = (client as unknown as { processID?: unknown }).processID;
  return typeof pid === "number" ? pid : undefined;
}

function assertNever(value: never): never {
  throw new Error(`assertion: unexpected ${JSON.stringify(value)}`);
}
