/**
 * The Redis participant: Redis has no prepare, so Verdict builds one from atomic Lua
 * scripts (docs/architecture.md §7.2, scripts.ts): prepare checks and stages a branch's
 * operations under locks, commit applies them, rollback drops them, each leaving an
 * outcome record that answers repeats and classifies a missing branch. One connection per
 * participant, with bounded connect and command times and no offline queue, so a call
 * while the server is down fails at once instead of waiting for it.
 */
import { Redis } from "ioredis";
import type {
  BranchId,
  BranchRef,
  BranchView,
  Health,
  OnePhaseOutcome,
  Participant,
  Phase2Context,
  Phase2Outcome,
  PrepareContext,
  Vote,
} from "../participant.js";
import { silentLogger, type ParticipantLogger } from "../common/logger.js";
import { clusterIdProblem } from "../common/cluster-id.js";
import { Lifecycle } from "../common/lifecycle.js";
import { errorIds, messageOf, type ParticipantErrorIds } from "../common/errors.js";
import { beforeDeadline } from "../common/time.js";
import { inspectRedisBranch } from "./inspect.js";
import { parseRedisParticipantConfig, type RedisParticipantConfig } from "./config.js";
import {
  CommitBlockedError,
  isServerCondition,
  isTransient,
  ParticipantNotStartedError,
  RedisConfigError,
  RedisParticipantError,
  RedisServerError,
  RedisUnavailableError,
} from "./errors.js";
import { isReservedKey, namespaceKeys, type NamespaceKeys } from "./keys.js";
import { redisPayloadSchema, stagedBytesMax, type RedisPayload } from "./payload.js";
import { programKeys, stagedProgram } from "./program.js";
import { loadScripts, runScript } from "./script-runner.js";
import { checkServer, redactedUrl, registerCluster } from "./startup.js";
import { readTlsFiles, tlsRefusal, type TlsMaterial } from "../../shared/tls.js";

export interface RedisParticipantDeps {
  readonly logger?: ParticipantLogger;
  /**
   * The clock of the participant's cheap early deadline checks (default Date.now). The
   * deciding check runs in the scripts, on the server's clock; tests run this one behind.
   */
  readonly nowMs?: () => number;
}

export type RedisParticipant = Participant<RedisPayload> &
  Required<Pick<Participant<RedisPayload>, "commitOnePhase" | "isCommitted">>;

/** Stable no-vote reasons of this participant. */
export const redisNoVoteReasons = {
  rolledBack: "rolled-back",
  lockConflict: "lock-conflict",
  preconditionFailed: "precondition-failed",
  operationInvalid: "operation-invalid",
  reservedKey: "reserved-key",
  payloadInvalid: "payload-invalid",
  inFlightLimit: "in-flight-limit",
  alreadyPrepared: "already-prepared",
  deadline: "deadline",
  participantUnavailable: "participant-unavailable",
  serverError: "server-error",
} as const;

/** Branch ids are at most 200 characters (PostgreSQL's gid limit, kept for every participant). */
const branchIdCharsMax = 200;
/** `forget` deletes in batches of at most this many ids. */
const forgetBatchMax = 500;
/** Keys are quoted in vote details up to this many characters. */
const keyInDetailCharsMax = 200;

export function createRedisParticipant(
  config: unknown,
  deps: RedisParticipantDeps = {},
): RedisParticipant {
  return new RedisParticipantImpl(
    parseRedisParticipantConfig(config),
    deps.logger ?? silentLogger,
    deps.nowMs ?? Date.now,
  );
}

/** A branch's encoded program, or why it is refused before anything is sent. */
type Phase1Answer =
  | { readonly kind: "refused"; readonly reason: string; readonly detail: string }
  | { readonly kind: "program"; readonly program: string };

class RedisParticipantImpl implements RedisParticipant {
  readonly kind = "redis" as const;
  readonly name: string;
  private readonly redis: Redis;
  private readonly keys: NamespaceKeys;
  /** Started with this cluster id. */
  private readonly life: Lifecycle<string>;
  /** Unsafe settings accepted under `unsafeServer: "warn"`, reported by health. */
  private warnings: readonly string[] = [];
  /** Logs a connection failure once per outage, not once per reconnection attempt. */
  private outageLogged = false;

  constructor(
    private readonly config: RedisParticipantConfig,
    private readonly logger: ParticipantLogger,
    private readonly nowMs: () => number,
  ) {
    this.name = config.name;
    this.life = new Lifecycle(this.name, (m) => new ParticipantNotStartedError(m, this.ids()));
    this.keys = namespaceKeys(config.namespace);
    this.redis = new Redis(config.url, {
      lazyConnect: true,
      connectTimeout: config.connectTimeoutMs,
      commandTimeout: config.commandTimeoutMs,
      // A command while disconnected fails at once; none waits in a queue for the server.
      enableOfflineQueue: false,
      // A command in flight when the connection drops fails; it is never sent twice.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (attempt) => Math.min(attempt * 100, config.reconnectDelayMsMax),
      connectionName: `verdict:${config.name}`.slice(0, 64).replace(/\s/g, "_"),
      ...(config.tls === undefined
        ? {}
        : { tls: { ...this.tlsMaterial(), rejectUnauthorized: true } }),
    });
    this.redis.on("error", (err: unknown) => {
      if (this.outageLogged) return;
      this.outageLogged = true;
      this.logger.warn(
        { participant: this.name, url: redactedUrl(config.url), err },
        "redis connection failed; reconnecting",
      );
    });
    this.redis.on("ready", () => {
      if (this.outageLogged) this.logger.info({ participant: this.name }, "redis reconnected");
      this.outageLogged = false;
    });
  }

  async start(clusterId: string): Promise<void> {
    const clusterIdRefusal = clusterIdProblem(clusterId);
    if (clusterIdRefusal !== undefined) throw new RedisConfigError(clusterIdRefusal, this.ids());
    this.life.assertOpen();
    try {
      await this.connected();
      this.warnings = await checkServer(this.redis, this.config, this.logger);
      await loadScripts(this.redis);
      await registerCluster(this.redis, this.keys, this.config, clusterId);
    } catch (err) {
      throw this.phase2Error(undefined, "start", err);
    }
    this.life.started(clusterId);
    this.logger.info(
      { participant: this.name, clusterId, namespace: this.config.namespace },
      "redis participant started",
    );
  }

  async prepare(branch: BranchRef<RedisPayload>, ctx: PrepareContext): Promise<Vote> {
    this.assertOwnBranch(branch.branchId);
    const answer = this.phase1Program(branch.payload);
    if (answer.kind === "refused") return no(answer.reason, answer.detail);
    return this.runPrepare(branch.branchId, answer.program, ctx.deadlineMs);
  }

  async commit(branch: BranchRef<RedisPayload>, ctx: Phase2Context): Promise<Phase2Outcome> {
    const reply = await this.phase2Script(branch.branchId, "commit", ctx);
    const [verdict, key = "", detail = ""] = reply;
    switch (verdict) {
      case "done":
        this.logger.info(
          { participant: this.name, branchId: branch.branchId, term: ctx.term },
          "branch committed",
        );
        return { outcome: "done" };
      case "already-done":
        return { outcome: "already-done" };
      case "heuristic-rollback":
        return { outcome: "heuristic-rollback", detail };
      case "blocked": {
        const message =
          `participant ${this.name}: commit of ${branch.branchId} cannot apply: key ${quoted(key)}, ${detail}. ` +
          `A client outside Verdict changed the key since prepare; nothing was applied, the branch stays staged. ` +
          `Fix the key (or resolve the transaction heuristically); the commit is retried.`;
        this.logger.error({ participant: this.name, branchId: branch.branchId, key }, message);
        throw new CommitBlockedError(message, this.ids(branch.branchId), key);
      }
      default:
        return this.unexpected("commit", verdict);
    }
  }

  async rollback(branch: BranchRef<RedisPayload>, ctx: Phase2Context): Promise<Phase2Outcome> {
    const [verdict, , detail = ""] = await this.phase2Script(branch.branchId, "rollback", ctx);
    switch (verdict) {
      case "done":
        this.logger.info(
          { participant: this.name, branchId: branch.branchId, term: ctx.term },
          "branch rolled back",
        );
        return { outcome: "done" };
      case "already-done":
        return { outcome: "already-done" };
      case "heuristic-commit":
        return { outcome: "heuristic-commit", detail };
      default:
        return this.unexpected("rollback", verdict);
    }
  }

  async commitOnePhase(
    branch: BranchRef<RedisPayload>,
    ctx: PrepareContext,
  ): Promise<OnePhaseOutcome> {
    this.assertOwnBranch(branch.branchId);
    const answer = this.phase1Program(branch.payload);
    if (answer.kind === "refused") return aborted(answer.reason, answer.detail);
    if (ctx.deadlineMs <= this.nowMs()) {
      return aborted(redisNoVoteReasons.deadline, "the deadline passed before the commit");
    }
    let reply: string[];
    try {
      reply = await runScript(this.redis, "commitOnePhase", this.branchKeys(branch.branchId), [
        this.keys.prefix,
        branch.branchId,
        answer.program,
        String(Date.now()),
        String(ctx.deadlineMs),
      ]);
    } catch (err) {
      // Sent, maybe applied: only the outcome record can tell (isCommitted).
      throw this.phase2Error(
        branch.branchId,
        "one-phase commit (outcome unknown, ask isCommitted)",
        err,
      );
    }
    const [verdict, reason = "", key = "", detail = ""] = reply;
    if (verdict === "committed") return { outcome: "committed" };
    if (verdict === "no") return aborted(reason, withKey(key, detail));
    return this.unexpected("commitOnePhase", verdict);
  }

  /**
   * Whether the branch committed. A "no" also settles it: the script leaves a tombstone, so
   * a one-phase commit still on its way to the server (from a crashed coordinator) can no
   * longer apply and make this answer wrong.
   */
  async isCommitted(branchId: BranchId): Promise<boolean> {
    this.assertOwnBranch(branchId);
    const [verdict] = await this.guard(branchId, "reading the outcome record", () =>
      runScript(this.redis, "isCommitted", this.branchKeys(branchId), [
        this.keys.prefix,
        branchId,
        String(Date.now()),
      ]),
    );
    switch (verdict) {
      case "committed":
        return true;
      case "staged":
      case "not-committed":
        return false;
      default:
        return this.unexpected("isCommitted", verdict);
    }
  }

  async recover(): Promise<BranchId[]> {
    const clusterId = this.life.assertStarted();
    const members = await this.guard(undefined, "reading the prepared index", () =>
      this.redis.smembers(this.keys.prepared),
    );
    const prefix = `${clusterId}:`;
    return members.filter((id) => id.startsWith(prefix)).sort() as BranchId[];
  }

  async inspect(branchId: BranchId): Promise<BranchView> {
    this.assertOwnBranch(branchId);
    return this.guard(branchId, "inspecting", () =>
      inspectRedisBranch(this.redis, this.keys, branchId),
    );
  }

  async forget(branchIds: readonly BranchId[]): Promise<void> {
    for (const id of branchIds) this.assertOwnBranch(id);
    for (let i = 0; i < branchIds.length; i += forgetBatchMax) {
      const batch = branchIds.slice(i, i + forgetBatchMax).map((id) => this.keys.outcome(id));
      await this.guard(undefined, "deleting outcome records", () => this.redis.del(...batch));
    }
  }

  async health(): Promise<Health> {
    const warnings = this.warnings;
    if (this.life.closed) return { ok: false, detail: "closed", warnings };
    if (this.redis.status !== "ready") {
      return { ok: false, detail: `not connected (${this.redis.status})`, warnings };
    }
    const started = Date.now();
    try {
      await this.redis.ping();
      return { ok: true, detail: `PING answered in ${Date.now() - started} ms`, warnings };
    } catch (err) {
      return { ok: false, detail: messageOf(err), warnings };
    }
  }

  async close(): Promise<void> {
    if (!this.life.close()) return;
    if (this.redis.status === "ready") {
      const quit = this.redis.quit().then(
        () => true,
        () => false,
      );
      if ((await beforeDeadline(quit, Date.now() + this.config.commandTimeoutMs)) === true) return;
    }
    this.redis.disconnect();
  }

  // ---- phase 1 ----

  /** Validates the payload and encodes its staged program, or says why the branch is refused. */
  private phase1Program(payload: RedisPayload): Phase1Answer {
    const parsed = redisPayloadSchema.safeParse(payload);
    if (!parsed.success) {
      return {
        kind: "refused",
        reason: redisNoVoteReasons.payloadInvalid,
        detail: parsed.error.issues
          .slice(0, 5)
          .map((i) => `${i.path.join(".")}: ${i.message}`)
          .join("; "),
      };
    }
    const program = stagedProgram(parsed.data);
    const reserved = programKeys(program).find((k) => isReservedKey(this.keys, k));
    if (reserved !== undefined) {
      return {
        kind: "refused",
        reason: redisNoVoteReasons.reservedKey,
        detail: `key ${quoted(reserved)} is inside Verdict's namespace ${quoted(this.keys.prefix)}`,
      };
    }
    const encoded = JSON.stringify(program);
    if (encoded.length > stagedBytesMax) {
      return {
        kind: "refused",
        reason: redisNoVoteReasons.payloadInvalid,
        detail: `the staged branch is over ${stagedBytesMax} bytes`,
      };
    }
    return { kind: "program", program: encoded };
  }

  /**
   * Runs the prepare script within the deadline. Never throws for a server problem: an
   * unreachable or slow server is a no-vote (a script that ran anyway left a staged branch
   * that the presumed-abort rollback removes).
   */
  private async runPrepare(
    branchId: BranchId,
    program: string,
    callerDeadlineMs: number,
  ): Promise<Vote> {
    if (callerDeadlineMs <= this.nowMs()) {
      return no(redisNoVoteReasons.deadline, "the prepare deadline had passed");
    }
    const deadlineMs = Math.min(callerDeadlineMs, this.nowMs() + this.config.commandTimeoutMs);
    let reply: string[] | undefined;
    try {
      reply = await beforeDeadline(
        runScript(this.redis, "prepare", this.branchKeys(branchId), [
          this.keys.prefix,
          branchId,
          program,
          String(Date.now()),
          String(this.config.inFlightMax),
          String(callerDeadlineMs),
        ]),
        deadlineMs,
        this.nowMs,
      );
    } catch (err) {
      if (!isServerCondition(err)) throw err;
      const reason = isTransient(err)
        ? redisNoVoteReasons.participantUnavailable
        : redisNoVoteReasons.serverError;
      return no(reason, messageOf(err));
    }
    if (reply === undefined) {
      return deadlineMs < callerDeadlineMs
        ? no(
            redisNoVoteReasons.participantUnavailable,
            `no answer within ${this.config.commandTimeoutMs} ms`,
          )
        : no(redisNoVoteReasons.deadline, "the prepare deadline passed before Redis answered");
    }
    const [verdict, reason = "", key = "", detail = ""] = reply;
    if (verdict === "yes") return { vote: "yes" };
    if (verdict === "no") return no(reason, withKey(key, detail));
    return this.unexpected("prepare", verdict);
  }

  // ---- plumbing ----

  private async phase2Script(
    branchId: BranchId,
    name: "commit" | "rollback",
    ctx: Phase2Context,
  ): Promise<string[]> {
    this.assertOwnBranch(branchId);
    return this.guard(branchId, name, () =>
      runScript(this.redis, name, this.branchKeys(branchId), [
        this.keys.prefix,
        branchId,
        String(ctx.term),
        String(ctx.decidedAtMs),
        String(Date.now()),
      ]),
    );
  }

  /** KEYS of every branch script: branch record, outcome record, prepared index. */
  private branchKeys(branchId: BranchId): string[] {
    return [this.keys.branch(branchId), this.keys.outcome(branchId), this.keys.prepared];
  }

  /** The `tls` files, read once; an unreadable one is a configuration error. */
  private tlsMaterial(): TlsMaterial | undefined {
    if (this.config.tls === undefined) return undefined;
    if (!this.config.url.startsWith("rediss://")) {
      throw new RedisConfigError(`participant ${this.name}: tls needs a rediss:// url`, this.ids());
    }
    try {
      return readTlsFiles(this.config.tls, `participant ${this.name}`);
    } catch (e) {
      throw new RedisConfigError(messageOf(e), this.ids());
    }
  }

  /**
   * Waits until the connection is ready, at most connectTimeoutMs (connecting first if
   * needed). A TLS handshake or credentials refused end the wait at once with a
   * configuration error: retrying the same handshake or password cannot help.
   */
  private async connected(): Promise<void> {
    if (this.redis.status === "ready") return;
    const ready = new Promise<true>((resolve) => this.redis.once("ready", () => resolve(true)));
    let refusal: { reason: string; err: unknown } | undefined;
    let refused = (): void => undefined;
    const gaveUp = new Promise<false>((resolve) => (refused = () => resolve(false)));
    const onError = (err: unknown) => {
      const reason = connectionRefusal(err);
      if (reason === undefined) return;
      refusal = { reason, err };
      refused();
    };
    this.redis.on("error", onError);
    if (this.redis.status === "wait") {
      // Failures are reported by the timeout below (and logged by the error listener).
      this.redis.connect().catch(() => undefined);
    }
    const result = await beforeDeadline(
      Promise.race([ready, gaveUp]),
      Date.now() + this.config.connectTimeoutMs,
    ).finally(() => this.redis.off("error", onError));
    if (refusal !== undefined) {
      throw new RedisConfigError(`participant ${this.name}: ${refusal.reason}`, this.ids(), {
        cause: refusal.err,
      });
    }
    if (result === undefined) {
      throw new RedisUnavailableError(
        `participant ${this.name}: could not connect to Redis at ${redactedUrl(this.config.url)} ` +
          `within ${this.config.connectTimeoutMs} ms (status ${this.redis.status})`,
        this.ids(),
      );
    }
  }

  /** Runs a phase-2, recovery or forget step; any failure becomes a typed, retryable error. */
  private async guard<T>(
    branchId: string | undefined,
    what: string,
    step: () => Promise<T>,
  ): Promise<T> {
    this.life.assertStarted();
    try {
      return await step();
    } catch (err) {
      throw this.phase2Error(branchId, what, err);
    }
  }

  /** A server condition as a typed, retryable error; anything else (a bug) unchanged. */
  private phase2Error(branchId: string | undefined, what: string, err: unknown): unknown {
    if (err instanceof RedisParticipantError || !isServerCondition(err)) return err;
    const message = `participant ${this.name}: ${what}${branchId === undefined ? "" : ` of ${branchId}`} failed: ${messageOf(err)}`;
    return isTransient(err)
      ? new RedisUnavailableError(message, this.ids(branchId), { cause: err })
      : new RedisServerError(message, this.ids(branchId), { cause: err });
  }

  private unexpected(script: string, verdict: string | undefined): never {
    throw new Error(`assertion: script ${script} answered ${JSON.stringify(verdict)}`);
  }

  private ids(branchId?: string): ParticipantErrorIds {
    return errorIds(this.name, branchId);
  }

  /** Branch ids come from the coordinator of this cluster; anything else is a broken invariant (G6). */
  private assertOwnBranch(branchId: string): void {
    const clusterId = this.life.assertStarted();
    if (!branchId.startsWith(`${clusterId}:`) || branchId.length > branchIdCharsMax) {
      throw new Error(
        `assertion: branch id ${JSON.stringify(branchId.slice(0, branchIdCharsMax))} is not one of cluster ${clusterId}`,
      );
    }
  }
}

function no(reason: string, detail: string): Vote {
  return { vote: "no", reason, detail };
}

function aborted(reason: string, detail: string): OnePhaseOutcome {
  return { outcome: "aborted", reason, detail };
}

function quoted(key: string): string {
  return JSON.stringify(
    key.length > keyInDetailCharsMax ? `${key.slice(0, keyInDetailCharsMax)}…` : key,
  );
}

function withKey(key: string, detail: string): string {
  return key === "" ? detail : `key ${quoted(key)}: ${detail}`;
}

/** Why the server refused this connection for good (TLS, or the url's credentials), if it did. */
function connectionRefusal(err: unknown): string | undefined {
  const tls = tlsRefusal(err);
  if (tls !== undefined) return `TLS: ${tls}`;
  const message = messageOf(err);
  return message.startsWith("WRONGPASS")
    ? `Redis refused the url's user and password (${message}); check the ACL user and its password`
    : undefined;
}
