/**
 * The engine's I/O shell: it runs the pure engine, and carries out what it asks — appends
 * to the decision log, participant calls, replies — feeding every result back as an input.
 *
 * Ordering contract: entries are fed to the engine as `applied` strictly in log order (a
 * reorder buffer holds any that become durable out of order), and only once durable, so
 * the engine's G1 rule — act on a decision only after it is applied — holds here.
 */
import type { Logger } from "pino";
import type { Participant } from "../../participants/participant.js";
import type { Engine, Input, Output, Reply, ReqId } from "../core/engine.js";
import type { BranchId, LogIndex, Term, Xid } from "../core/ids.js";
import type { BranchSpec, LogRecord } from "../core/records.js";
import type { Entry } from "../core/table.js";
import type { DecisionLog } from "../log/decision-log.js";
import type { Metrics } from "../telemetry/metrics.js";
import type { Failpoints } from "../failpoints/failpoints.js";
import { inSpan } from "../telemetry/tracing.js";

export type ClientInput = Extract<
  Input,
  { type: "begin" | "enlist" | "report-prepared" | "prepare" | "commit" | "abort" }
>;
type WithoutReq<T> = T extends unknown ? Omit<T, "req"> : never;

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
}

export class Driver {
  private nextReq: ReqId = 1;
  private readonly waiting = new Map<ReqId, (reply: Reply) => void>();
  private readonly reorder = new Map<number, Entry>();
  private nextToApply = 1;
  private timer: NodeJS.Timeout | undefined;
  private snapshotting = false;
  private lastSnapshotIndex = 0;
  private closed = false;

  constructor(private readonly d: DriverDeps) {}

  /** Replays the log into the engine, then leads (single node: a Raft group of one). */
  async start(): Promise<void> {
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
    this.run(this.d.engine.becomeLeader(this.d.now()));
    this.timer = setInterval(() => this.input({ type: "tick" }), this.d.tickMs);
    this.timer.unref();
  }

  /** A client call: resolves with the engine's reply once it has one. */
  call(input: WithoutReq<ClientInput>): Promise<Reply> {
    const req = this.nextReq++;
    return new Promise<Reply>((resolve) => {
      this.waiting.set(req, resolve);
      this.input({ ...input, req });
    });
  }

  /** Stops ticking; in-flight participant calls finish on their own, the log is closed by the caller. */
  stop(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.run(this.d.engine.stepDown());
  }

  private input(input: Input): void {
    if (this.closed && input.type !== "applied") return;
    this.run(this.d.engine.handle(input, this.d.now()));
  }

  private run(outputs: Output[]): void {
    for (const o of outputs) this.execute(o);
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
        return this.append(o.record);
      case "prepare":
        return void this.participantCall(o.branch.participant, "prepare", async (p) => {
          await this.d.failpoints.hit("before-prepare");
          const vote = await p.prepare(o.branch, { deadlineMs: o.deadlineMs });
          await this.d.failpoints.hit("after-prepare");
          return vote;
        }).then(
          (vote) => this.input({ type: "voted", xid: o.xid, n: o.branch.n, vote }),
          (e: unknown) =>
            this.input({
              type: "voted",
              xid: o.xid,
              n: o.branch.n,
              vote: { vote: "no", reason: "participant-error", detail: errorText(e) },
            }),
        );
      case "commit":
      case "rollback":
        return void this.participantCall(o.branch.participant, o.type, async (p) => {
          await this.d.failpoints.hit(o.type === "commit" ? "before-commit" : "before-rollback");
          const outcome = await p[o.type](o.branch, {
            term: o.term,
            decidedAtMs: o.decidedAtMs,
          });
          await this.d.failpoints.hit(o.type === "commit" ? "after-commit" : "after-rollback");
          return outcome;
        }).then(
          (outcome) => {
            if (outcome.outcome.startsWith("heuristic")) {
              this.d.metrics.heuristics.inc({ outcome: outcome.outcome });
              this.d.logger.error({ xid: o.xid, branch: o.branch.n, outcome }, "heuristic outcome");
            }
            this.input({ type: "phase2-done", xid: o.xid, n: o.branch.n, outcome });
          },
          (e: unknown) => {
            this.d.logger.warn(
              { xid: o.xid, branch: o.branch.n, err: errorText(e) },
              `${o.type} failed, will retry`,
            );
            this.input({ type: "phase2-failed", xid: o.xid, n: o.branch.n, error: errorText(e) });
          },
        );
      case "commit-one-phase":
      case "check-one-phase":
        return void this.participantCall(o.branch.participant, o.type, async (p) => {
          if (o.type === "commit-one-phase") {
            if (!p.commitOnePhase) throw new Error(`${p.name} cannot commit in one phase`);
            await this.d.failpoints.hit("before-one-phase-commit");
            const result = await p.commitOnePhase(o.branch, { deadlineMs: o.deadlineMs });
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

  private append(record: LogRecord): void {
    const started = performance.now();
    void this.d.failpoints
      .hit(record.type === "decide" ? "before-decision-append" : "before-append")
      .then(() => this.d.log.append([record]))
      .then(
        async (res) => {
          this.d.metrics.appendSeconds.observe((performance.now() - started) / 1000);
          const entry = { index: res.firstIndex as LogIndex, term: res.term as Term, record };
          try {
            await this.d.failpoints.hit(
              record.type === "preparing"
                ? "after-preparing-durable"
                : record.type === "decide"
                  ? "after-decision-durable"
                  : "after-append",
            );
          } catch (e) {
            // The entry is durable but its proposer hears a failure: the engine must cope with
            // an append reported failed that landed anyway, and the log must still be applied
            // in order, or every later entry would wait for this one forever.
            this.d.logger.error(
              { err: errorText(e), record: record.type },
              "durable append reported failed",
            );
            this.input({ type: "append-failed", record, error: errorText(e) });
          }
          this.feedApplied(entry);
        },
        (e: unknown) => {
          this.d.logger.error({ err: errorText(e), record: record.type }, "log append failed");
          this.input({ type: "append-failed", record, error: errorText(e) });
        },
      );
  }

  /** Feeds entries to the engine strictly in index order. */
  private feedApplied(entry: Entry): void {
    this.reorder.set(entry.index, entry);
    for (
      let next = this.reorder.get(this.nextToApply);
      next;
      next = this.reorder.get(this.nextToApply)
    ) {
      this.reorder.delete(this.nextToApply);
      this.nextToApply += 1;
      this.input({ type: "applied", entry: next });
      if (next.record.type === "decide") this.countDecision(next.record.xid, next.index);
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
  ): Promise<T> {
    const p = this.d.participants.get(name);
    if (!p) throw new Error(`participant ${name} is not configured`);
    const end = this.d.metrics.participantSeconds.startTimer({ participant: name, op });
    try {
      return await inSpan(`${op} ${name}`, { "verdict.participant": name, "verdict.op": op }, () =>
        call(p),
      );
    } finally {
      end();
    }
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
