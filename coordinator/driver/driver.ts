/**
 * The engine's I/O shell: it runs the pure engine, and carries out what it asks — appends
 * to the decision log, participant calls, replies — feeding every result back as an input.
 *
 * Ordering contract: entries are fed to the engine as `applied` strictly in log order (a
 * reorder buffer holds any that become durable out of order), and only once durable, so
 * the engine's G1 rule — act on a decision only after it is applied — holds here.
 *
 * Bounds (coordinator/config/limits.ts): replies awaited at once (`repliesWaitingMax`; over it
 * a call is answered `unavailable` without reaching the engine), and appends in flight plus
 * entries held for in-order apply (`appendsInFlightMax`; over it an append is refused as
 * `append-failed`, so its proposer hears a typed failure). Neither map grows past its bound.
 */
import type { AuditLog } from "../audit/audit-log.js";
import type { Logger } from "pino";
import type { BranchView, Health, Participant } from "../../participants/participant.js";
import {
  branchVote,
  failedVote,
  type CallError,
  type Engine,
  type Proposal,
  type FoundBranches,
  type Input,
  type Output,
  type ReadInput,
  type RecoveryReport,
  type Reply,
  type ReqId,
} from "../core/engine.js";
import type { BranchId, LogIndex, Term, Xid } from "../core/ids.js";
import type { BranchSpec, LogRecord } from "../core/records.js";
import type { Entry } from "../core/table.js";
import type { DecisionLog } from "../log/decision-log.js";
import type { Metrics } from "../telemetry/metrics.js";
import type { Failpoints } from "../failpoints/failpoints.js";
import { inSpan } from "../telemetry/tracing.js";
import { withTimeout } from "./deadline.js";
import { verifySettled } from "./recovery-verify.js";
import { ParticipantCallError } from "./errors.js";
import { InvariantError, invariant } from "../core/assert.js";
import { tooManyWaiting } from "../core/replies.js";
import { fixedLimits } from "../config/limits.js";

export type ClientInput = Extract<
  Input,
  { type: "begin" | "enlist" | "report-prepared" | "prepare" | "commit" | "abort" }
>;
type WithoutReq<T> = T extends unknown ? Omit<T, "req"> : never;
type Request = Extract<Input, { req: ReqId }>;
export type ResolveCall = Omit<Extract<Input, { type: "resolve" }>, "req" | "prepared">;
/** What the API asks the engine: a client's call, a read, an operator's resolution. */
export type Call = WithoutReq<ClientInput | ReadInput> | ResolveCall;

const readTypes: ReadonlySet<Call["type"]> = new Set(["view", "admin-facts", "admin-list"]);

/** What one recovery scan found and did, and which participants it could not list. */
export interface RecoveryResult extends Omit<RecoveryReport, "settling"> {
  /** Logged for commit or rollback but still prepared when the scan stopped waiting. */
  readonly pending: number;
  readonly startedAtMs: number;
  readonly finishedAtMs: number;
  readonly errors: readonly { readonly participant: string; readonly message: string }[];
}

export interface DriverDeps {
  readonly engine: Engine;
  readonly log: DecisionLog<LogRecord>;
  readonly participants: ReadonlyMap<string, Participant>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly failpoints: Failpoints;
  readonly now: () => number;
  readonly tickMs: number;
  readonly snapshotEveryEntries: number;
  /** The driver's own bound on any participant call (each participant keeps shorter ones). */
  readonly participantCallTimeoutMs: number;
  /** A recovery scan's wait to verify its own commits and rollbacks (recovery-verify.ts). */
  readonly recoveryVerifyMs: number;
  /** How often recovery scans the participants for branches the log does not explain. */
  readonly recoveryIntervalMs: number;
  /**
   * What a read waits for before the engine answers it: the seam of linearizable reads (a
   * leader confirms it still leads, and its table has applied what the log held then). A
   * single node's log is its own: without one, reads go in at once.
   */
  readonly readBarrier?: () => Promise<void>;
  /** Where heuristic outcomes are recorded beside operator actions (audit/audit-log.ts). */
  readonly audit: Pick<AuditLog, "append">;
  /** The driver's own bounds; the fixed limits unless a test sets smaller ones. */
  readonly bounds?: DriverBounds;
}

export interface DriverBounds {
  /** Engine replies awaited at once (`waiting`). */
  readonly repliesWaitingMax: number;
  /** Log appends in flight plus durable entries waiting for an earlier one (`reorder`). */
  readonly appendsInFlightMax: number;
}

export class Driver {
  private nextReq: ReqId = 1;
  private readonly waiting = new Map<ReqId, (reply: Reply) => void>();
  private readonly reorder = new Map<number, { entry: Entry; proposal?: Proposal }>();
  private nextToApply = 1;
  private appendsInFlight = 0;
  private readonly bounds: DriverBounds;
  private timer: NodeJS.Timeout | undefined;
  private recoveryTimer: NodeJS.Timeout | undefined;
  /** Scans run one after another: an on-demand one starts after any under way. */
  private scans: Promise<unknown> = Promise.resolve();
  private scansPending = 0;
  private snapshotting = false;
  private lastSnapshotIndex = 0;
  private closed = false;

  constructor(private readonly d: DriverDeps) {
    this.bounds = d.bounds ?? {
      repliesWaitingMax: fixedLimits.driverRepliesWaitingMax,
      appendsInFlightMax: fixedLimits.driverAppendsInFlightMax,
    };
  }

  /**
   * Replays the log into the engine, then leads `term` (the local log's fixed term, or one etcd
   * term: this driver and its engine then serve that term only, and `stop` ends both). The
   * replay must cover every entry of earlier terms (the etcd log's takeover read does).
   */
  async start(opts: { term?: Term; fenceInBackground?: boolean } = {}): Promise<void> {
    const { snapshot, entries } = await this.d.log.replay();
    if (snapshot) {
      this.d.engine.loadSnapshot(snapshot.data);
      this.nextToApply = snapshot.index + 1;
      this.lastSnapshotIndex = snapshot.index;
    }
    for (const e of entries) {
      this.feedApplied({ index: e.index as LogIndex, term: e.term as Term, record: e.record });
    }
    this.d.logger.info(
      {
        snapshotIndex: snapshot?.index ?? 0,
        entries: entries.length,
        transactions: this.d.engine.table.size,
      },
      "log replayed",
    );
    // Safety never waits for it (a re-driven Kafka branch checks its marker under its own
    // producer's epoch): in a cluster, takeover need not wait.
    const fenced = this.fenceAll();
    if (!opts.fenceInBackground) await fenced;
    if (this.closed) return;
    // The whole log is replayed, so the new leadership has caught up at once.
    const term = opts.term ?? localTerm;
    this.run(this.d.engine.becomeLeader(term, this.d.now(), this.d.log.lastIndex()));
    this.d.metrics.leadershipChanges.inc({ change: "gained" });
    this.d.metrics.leader.set(1);
    this.timer = setInterval(() => this.input({ type: "tick" }), this.d.tickMs);
    this.timer.unref();
    // A periodic scan is skipped while another is pending: slow scans never pile up.
    this.recoveryTimer = setInterval(() => {
      if (this.scansPending === 0) void this.recover();
    }, this.d.recoveryIntervalMs);
    this.recoveryTimer.unref();
    void this.recover();
  }

  /** A new leader fences every earlier attempt a participant may still be running (Kafka). */
  private async fenceAll(): Promise<void> {
    await Promise.all(
      [...this.d.participants.values()].map(async (p) => {
        if (!p.fence) return;
        try {
          await withTimeout(p.fence(), this.d.participantCallTimeoutMs, `fence ${p.name}`);
        } catch (e) {
          // A slot without a producer fences before its next batch: this only hurries deposed nodes.
          this.d.logger.warn({ participant: p.name, err: errorText(e) }, "fence failed");
        }
      }),
    );
  }

  /**
   * One recovery scan: every participant lists this cluster's prepared branches, and the engine
   * settles those the log does not explain (each action logged before it is taken).
   */
  recover(): Promise<RecoveryResult> {
    this.scansPending += 1;
    const scan = this.scans.then(() => this.scan()).finally(() => (this.scansPending -= 1));
    this.scans = scan.catch(() => undefined);
    return scan;
  }

  private async scan(): Promise<RecoveryResult> {
    const startedAtMs = this.d.now();
    const startedAtIndex = this.d.engine.table.appliedIndex;
    const errors: { participant: string; message: string }[] = [];
    const lists = await Promise.all(
      [...this.d.participants].map(async ([name, p]): Promise<FoundBranches | undefined> => {
        try {
          return { participant: name, kind: p.kind, branchIds: await this.prepared(p) };
        } catch (e) {
          errors.push({ participant: name, message: errorText(e) });
          this.d.metrics.recoveryErrors.inc({ participant: name });
          return undefined;
        }
      }),
    );
    await this.d.failpoints.hit("recovery-after-scan");
    const found = lists.filter((l): l is FoundBranches => l !== undefined);
    const reply = await this.request({ type: "recovered", startedAtIndex, found });
    const logged =
      reply.kind === "recovery"
        ? reply.report
        : { found: 0, committed: 0, rolledBack: 0, left: 0, settling: [] };
    const verified = await verifySettled(
      logged.settling,
      (name) => this.listPrepared(name),
      this.d.now,
      this.d.recoveryVerifyMs,
    );
    const report = { found: logged.found, left: logged.left, ...verified };
    this.d.metrics.recoveryBranches.inc({ action: "committed" }, report.committed);
    this.d.metrics.recoveryBranches.inc({ action: "rolled-back" }, report.rolledBack);
    this.d.metrics.recoveryBranches.inc({ action: "left" }, report.left);
    this.d.metrics.recoveryBranches.inc({ action: "pending" }, report.pending);
    if (report.committed + report.rolledBack > 0 || errors.length > 0) {
      this.d.logger.warn(
        { ...report, errors },
        "recovery settled branches the log did not explain",
      );
    }
    return { ...report, startedAtMs, finishedAtMs: this.d.now(), errors };
  }

  /** The branches `p` holds prepared for this cluster, within the driver's call bound. */
  private prepared(p: Participant): Promise<BranchId[]> {
    return withTimeout(p.recover(), this.d.participantCallTimeoutMs, `recover ${p.name}`);
  }

  /**
   * An operator's resolution. A forced commit first asks the participants which of the
   * transaction's branches they hold prepared: the engine commits only if all are.
   */
  async resolve(input: ResolveCall): Promise<Reply> {
    const prepared = new Set<string>();
    if (input.action === "commit") {
      const names = new Set(this.d.engine.view(input.xid)?.branches.map((b) => b.participant));
      for (const name of names) {
        const p = this.d.participants.get(name);
        if (!p) continue;
        try {
          for (const id of await this.prepared(p)) prepared.add(id);
        } catch (e) {
          return {
            kind: "error",
            code: "unavailable",
            message: `cannot check that every branch is prepared: ${name}: ${errorText(e)}`,
          };
        }
      }
    }
    return this.request({ ...input, prepared });
  }

  /**
   * Whether `name` holds the service-prepared branch `branchId` prepared: undefined when it
   * does, why not otherwise. Throws ParticipantCallError when the participant cannot answer.
   * It is a prepare call (a service-prepared vote), under the prepare failpoints.
   */
  async checkServicePrepared(name: string, branchId: BranchId): Promise<string | undefined> {
    if (!this.d.participants.has(name)) return `participant ${name} is not configured`;
    const vote = await this.directCall(name, "check-prepared", async (p) => {
      await this.d.failpoints.hit("before-prepare");
      const answer = await p.prepare(
        { branchId, payload: { kind: "service-prepared" } },
        { deadlineMs: this.d.now() + this.d.participantCallTimeoutMs },
      );
      await this.d.failpoints.hit("after-prepare");
      return answer;
    });
    return vote.vote === "yes" ? undefined : `${vote.reason}: ${vote.detail}`;
  }

  /** This cluster's branches `name` holds prepared, for operators. Throws ParticipantCallError. */
  listPrepared(name: string): Promise<BranchId[]> {
    return this.directCall(name, "list-prepared", (p) => p.recover());
  }

  /** `name`'s own view of `branchId` (read only), for operators. Throws ParticipantCallError. */
  inspectBranch(name: string, branchId: BranchId, evidence?: string): Promise<BranchView> {
    return this.directCall(name, "inspect", (p) => p.inspect(branchId, evidence));
  }

  /** `name`'s health within `boundMs` (a probe's budget). Throws ParticipantCallError. */
  participantHealth(name: string, boundMs: number): Promise<Health> {
    return this.directCall(name, "health", (p) => p.health(), boundMs).then(
      (health) => {
        this.d.metrics.participantUp.set({ participant: name }, health.ok ? 1 : 0);
        return health;
      },
      (e: unknown) => {
        this.d.metrics.participantUp.set({ participant: name }, 0);
        throw e;
      },
    );
  }

  /** A participant call made for a caller, not the engine: its failures are typed. */
  private async directCall<T>(
    name: string,
    op: string,
    call: (p: Participant) => Promise<T>,
    boundMs = this.d.participantCallTimeoutMs,
  ): Promise<T> {
    if (!this.d.participants.has(name)) {
      throw new ParticipantCallError(name, op, "not configured", { retryable: false });
    }
    try {
      return await this.participantCall(name, op, call, boundMs);
    } catch (e) {
      throw new ParticipantCallError(name, op, errorText(e), { retryable: true, cause: e });
    }
  }

  /**
   * Graceful shutdown, before `stop`: no new transactions; those under way get `graceMs` to
   * finish; then what never reached `preparing` (it lives only in this memory) is aborted
   * durably. Whatever is decided and still unfinished is in the log for the next start.
   */
  async drain(graceMs: number): Promise<void> {
    this.input({ type: "drain" });
    await this.until(() => this.d.engine.drainPending() === 0, graceMs);
    this.input({ type: "abandon" });
    await this.until(
      () => this.d.engine.drainPending() === 0,
      Math.min(graceMs, fixedLimits.abandonWaitMsMax),
    );
    this.d.logger.info(
      { unfinished: this.d.engine.drainPending() },
      "drained: the next start finishes what is left",
    );
  }

  private async until(done: () => boolean, ms: number): Promise<void> {
    const until = this.d.now() + ms;
    while (!done() && this.d.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** A call the engine answers, reads included: resolves with its reply once it has one. */
  async call(input: Call): Promise<Reply> {
    if (input.type === "resolve") return this.resolve(input);
    if (readTypes.has(input.type)) await this.d.readBarrier?.();
    return this.request(input);
  }

  private request(input: WithoutReq<Request>): Promise<Reply> {
    // A stopped driver's engine leads no more: nothing would ever answer.
    if (this.closed) return Promise.resolve(notLeader);
    if (this.waiting.size >= this.bounds.repliesWaitingMax) {
      return Promise.resolve(
        tooManyWaiting("driverRepliesWaitingMax", this.bounds.repliesWaitingMax),
      );
    }
    const req = this.nextReq++;
    return new Promise<Reply>((resolve) => {
      this.waiting.set(req, resolve);
      this.input({ ...input, req });
    });
  }

  /**
   * Stops ticking and leading: the term this driver served is over. Participant calls in flight
   * finish on their own, but their results are dropped (`input` takes nothing more but log
   * entries), and no new participant request is sent. The log is closed by the caller.
   */
  stop(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.recoveryTimer) clearInterval(this.recoveryTimer);
    this.run(this.d.engine.stepDown());
    this.d.metrics.leadershipChanges.inc({ change: "lost" });
    this.d.metrics.leader.set(0);
  }

  private input(input: Input): void {
    if (this.closed && input.type !== "applied") return;
    this.run(this.d.engine.handle(input, this.d.now()));
  }

  private run(outputs: Output[]): void {
    for (const o of outputs) {
      // After its term, a driver only answers its waiting calls; it sends nothing.
      if (this.closed && o.type !== "reply") continue;
      this.execute(o);
    }
  }

  private execute(o: Output): void {
    switch (o.type) {
      case "reply": {
        const resolve = this.waiting.get(o.req);
        this.waiting.delete(o.req);
        resolve?.(o.reply);
        return;
      }
      case "append":
        return this.append(o.record, o.proposal);
      case "prepare":
        return void this.participantCall(o.branch.participant, "prepare", async (p) => {
          await this.d.failpoints.hit("before-prepare");
          const vote = await p.prepare(o.branch, {
            deadlineMs: o.deadlineMs,
            principal: o.principal,
          });
          await this.d.failpoints.hit("after-prepare");
          return vote;
        }).then(
          (vote) =>
            this.input({ type: "voted", xid: o.xid, n: o.branch.n, vote: branchVote(vote) }),
          (e: unknown) =>
            this.input({
              type: "voted",
              xid: o.xid,
              n: o.branch.n,
              vote: failedVote(callError(e)),
            }),
        );
      case "commit":
      case "rollback":
        return void this.participantCall(o.branch.participant, o.type, async (p) => {
          await this.d.failpoints.hit(o.type === "commit" ? "before-commit" : "before-rollback");
          const outcome = await p[o.type](o.branch, {
            term: o.term,
            decidedAtMs: o.decidedAtMs,
            ...(o.evidence === undefined ? {} : { evidence: o.evidence }),
            ...(o.firstCall === true ? { firstCall: true } : {}),
          });
          await this.d.failpoints.hit(o.type === "commit" ? "after-commit" : "after-rollback");
          return outcome;
        }).then(
          (outcome) => {
            if (outcome.outcome.startsWith("heuristic")) {
              this.d.metrics.heuristics.inc({ outcome: outcome.outcome });
              this.d.logger.error({ xid: o.xid, branch: o.branch.n, outcome }, "heuristic outcome");
              this.d.audit
                .append({
                  principal: null,
                  action: "heuristic-outcome",
                  xid: o.xid,
                  branch: o.branch.n,
                  code: outcome.outcome,
                  ...("detail" in outcome ? { reason: outcome.detail.slice(0, 4000) } : {}),
                })
                .catch((err: unknown) => this.d.logger.error({ err }, "audit record not written"));
            }
            this.input({ type: "phase2-done", xid: o.xid, n: o.branch.n, outcome });
          },
          (e: unknown) => {
            this.d.logger.warn(
              { xid: o.xid, branch: o.branch.n, err: errorText(e) },
              `${o.type} failed, will retry`,
            );
            this.d.metrics.phase2Retries.inc({ participant: o.branch.participant, op: o.type });
            this.input({ type: "phase2-failed", xid: o.xid, n: o.branch.n, error: callError(e) });
          },
        );
      case "commit-one-phase":
      case "check-one-phase":
        return void this.participantCall(o.branch.participant, o.type, async (p) => {
          if (o.type === "commit-one-phase") {
            if (!p.commitOnePhase) throw new Error(`${p.name} cannot commit in one phase`);
            await this.d.failpoints.hit("before-one-phase-commit");
            const result = await p.commitOnePhase(o.branch, {
              deadlineMs: o.deadlineMs,
              principal: o.principal,
            });
            await this.d.failpoints.hit("after-one-phase-commit");
            return result;
          }
          if (!p.isCommitted) throw new Error(`${p.name} cannot check a one-phase branch`);
          return (await p.isCommitted(o.branch.branchId))
            ? ({ outcome: "committed" } as const)
            : ({
                outcome: "aborted",
                reason: "not-committed",
                detail: "its marker is absent",
              } as const);
        }).then(
          (outcome) => this.input({ type: "one-phase-done", xid: o.xid, outcome }),
          (e: unknown) => {
            this.d.logger.warn(
              { xid: o.xid, err: errorText(e) },
              `${o.type}: outcome unknown, will check the marker`,
            );
            this.input({
              type: "one-phase-done",
              xid: o.xid,
              outcome: { outcome: "unknown", detail: errorText(e) },
            });
          },
        );
      case "forgotten":
        return this.forget(o.branches);
    }
  }

  private append(record: LogRecord, proposal: Proposal): void {
    const max = this.bounds.appendsInFlightMax;
    if (this.appendsInFlight + this.reorder.size >= max) {
      // Heard after the outputs of this step, like any append's outcome.
      const error = `over driverAppendsInFlightMax (${max}): the log is behind`;
      void Promise.resolve().then(() =>
        this.input({ type: "append-failed", record, proposal, error }),
      );
      return;
    }
    this.appendsInFlight += 1;
    const started = performance.now();
    void this.d.failpoints
      .hit(beforeAppend[record.type])
      .then(() =>
        inSpan("log append", { "verdict.record": record.type }, () => this.d.log.append([record])),
      )
      .then(
        async (res) => {
          this.d.metrics.appendSeconds.observe(
            { record: record.type },
            (performance.now() - started) / 1000,
          );
          const entry = { index: res.firstIndex as LogIndex, term: res.term as Term, record };
          try {
            await this.d.failpoints.hit(afterDurable[record.type]);
          } catch (e) {
            // The entry is durable but its proposer hears a failure: the engine must cope with
            // an append reported failed that landed anyway, and the log must still be applied
            // in order, or every later entry would wait for this one forever.
            this.d.logger.error(
              { err: errorText(e), record: record.type },
              "durable append reported failed",
            );
            this.input({ type: "append-failed", record, proposal, error: errorText(e) });
          }
          this.appendsInFlight -= 1;
          this.feedApplied(entry, proposal);
        },
        (e: unknown) => {
          this.appendsInFlight -= 1;
          this.d.logger.error({ err: errorText(e), record: record.type }, "log append failed");
          this.input({ type: "append-failed", record, proposal, error: errorText(e) });
        },
      );
  }

  /** Feeds entries to the engine strictly in index order. */
  private feedApplied(entry: Entry, proposal?: Proposal): void {
    this.reorder.set(entry.index, { entry, ...(proposal ? { proposal } : {}) });
    // Each held entry came from an append counted against the bound when it was accepted.
    invariant(
      this.reorder.size <= this.bounds.appendsInFlightMax,
      `reorder buffer over ${this.bounds.appendsInFlightMax} entries`,
    );
    for (
      let next = this.reorder.get(this.nextToApply);
      next;
      next = this.reorder.get(this.nextToApply)
    ) {
      this.reorder.delete(this.nextToApply);
      this.nextToApply += 1;
      this.input({ type: "applied", ...next });
      const { record, index } = next.entry;
      if (record.type === "decide") this.countDecision(record.xid, index);
    }
    this.maybeSnapshot();
  }

  /** Counts a decision once: when the entry that made it is applied (not a losing repeat). */
  private countDecision(xid: Xid, index: number): void {
    const decision = this.d.engine.table.get(xid)?.decision;
    if (decision?.index === index) this.d.metrics.decisions.inc({ decision: decision.decision });
  }

  private maybeSnapshot(): void {
    const applied = this.d.engine.table.appliedIndex;
    if (this.snapshotting || applied - this.lastSnapshotIndex < this.d.snapshotEveryEntries) return;
    this.snapshotting = true;
    const data = this.d.engine.table.snapshot();
    this.d.log.saveSnapshot(applied, data).then(
      () => {
        this.lastSnapshotIndex = applied;
        this.snapshotting = false;
      },
      (e: unknown) => {
        this.snapshotting = false;
        this.d.logger.error({ err: errorText(e) }, "snapshot failed");
      },
    );
  }

  private forget(branches: readonly BranchSpec[]): void {
    const byParticipant = new Map<string, BranchId[]>();
    for (const b of branches) {
      const list = byParticipant.get(b.participant) ?? [];
      list.push(b.branchId);
      byParticipant.set(b.participant, list);
    }
    for (const [name, ids] of byParticipant) {
      const p = this.d.participants.get(name);
      // Collecting markers is housekeeping: a failure leaves garbage, never a wrong answer.
      p?.forget(ids).catch((e: unknown) =>
        this.d.logger.warn({ participant: name, err: errorText(e) }, "forget failed"),
      );
    }
  }

  private async participantCall<T>(
    name: string,
    op: string,
    call: (p: Participant) => Promise<T>,
    boundMs = this.d.participantCallTimeoutMs,
  ): Promise<T> {
    const p = this.d.participants.get(name);
    if (!p) throw new Error(`participant ${name} is not configured`);
    const end = this.d.metrics.participantSeconds.startTimer({ participant: name, op });
    try {
      return await inSpan(`${op} ${name}`, { "verdict.participant": name, "verdict.op": op }, () =>
        withTimeout(call(p), Math.min(boundMs, this.d.participantCallTimeoutMs), `${op} ${name}`),
      );
    } catch (e) {
      // A broken invariant is never a participant failure to retry: the process dies.
      if (e instanceof InvariantError) crash(e);
      throw e;
    } finally {
      end();
    }
  }
}

const localTerm = 1 as Term;

const notLeader: Reply = {
  kind: "error",
  code: "not-leader",
  message: "this node no longer leads the term it served",
};

/** Rethrows `e` outside any promise chain, so that it crashes the process (then fails over). */
function crash(e: InvariantError): never {
  process.nextTick(() => {
    throw e;
  });
  throw e;
}

const beforeAppend = {
  preparing: "before-append",
  decide: "before-decision-append",
  acks: "before-acks-append",
  recover: "before-append",
  forget: "before-append",
} as const satisfies Record<LogRecord["type"], string>;

const afterDurable = {
  preparing: "after-preparing-durable",
  decide: "after-decision-durable",
  recover: "after-recovery-durable",
  acks: "after-append",
  forget: "after-append",
} as const satisfies Record<LogRecord["type"], string>;

/** A failed call's typed error as the engine takes it: its code and whether a retry can help. */
function callError(e: unknown): CallError {
  const typed = e as { code?: unknown; retryable?: unknown };
  return {
    code: typeof typed.code === "string" ? typed.code : "error",
    message: errorText(e),
    retryable: typeof typed.retryable === "boolean" ? typed.retryable : true,
  };
}

export function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
