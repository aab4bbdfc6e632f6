/**
 * A deterministic simulator of one coordinator node over the pure engine, for the property
 * tests. Everything is driven by one seeded PRNG, so a failing seed replays exactly.
 *
 * It plays the shell's part: an in-memory log whose appends become durable in order after a
 * random delay (a crash drops those that are not yet durable, and an append can fail — either
 * really lost or written anyway, as when a proposal times out but lands); fake participants
 * that keep per-branch state and record every call they saw together with the durable
 * decision at that moment; clients that begin, enlist, prepare, commit and abort, retry, and
 * call as the wrong principal; a clock with deadlines; crashes and restarts (a new Engine,
 * replay, becomeLeader); and out-of-order delivery of calls and answers.
 *
 * The checkers read only the harness's own model of the durable log, never the engine's
 * table, so a broken table cannot hide its own faults.
 */
import type { ParticipantKind, Phase2Outcome, Vote } from "../../../participants/participant.js";
import type { BranchWork, RecordedWork } from "../../../shared/branch-work.js";
import {
  branchVote,
  Engine,
  failedVote,
  type EngineConfig,
  type PrepareOrder,
  type FoundBranches,
  type Input,
  type Output,
  type Proposal,
  type Principal,
  type Reply,
} from "../../../coordinator/core/engine.js";
import type { ClusterId, LogIndex, Term, Xid } from "../../../coordinator/core/ids.js";
import type {
  BranchSpec,
  Decision,
  LogRecord,
  LoggedKey,
} from "../../../coordinator/core/records.js";
import type { Entry } from "../../../coordinator/core/table.js";
import { durableState, heuristicOf } from "../../../coordinator/core/table.js";
import { isWork } from "../../../coordinator/core/payload.js";

// ---- seeded randomness --------------------------------------------------------------------

/** mulberry32: small, fast, and good enough to drive a simulation. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error("pick from an empty list");
    return item;
  }
}

// ---- configuration ------------------------------------------------------------------------

export interface Faults {
  /** Per step. */
  readonly crash: number;
  /** Per enlist: the work will fail at prepare, so the branch votes no. */
  readonly failingWork: number;
  /** Per call: not executed, answered with an error. */
  readonly transient: number;
  /** Per call: executed or not, the answer is lost (the shell reports a timeout). */
  readonly noAnswer: number;
  /** Per step: an append fails; it is really lost, or written anyway. */
  readonly appendFail: number;
  /** Per step: the clock jumps far (past deadlines). */
  readonly clockJump: number;
  /** Per step: a service prepares one of its branches on its own (XA style), maybe never reported. */
  readonly strayPrepare: number;
}

export const defaultFaults: Faults = {
  crash: 0.01,
  failingWork: 0.05,
  transient: 0.08,
  noAnswer: 0.05,
  appendFail: 0.02,
  clockJump: 0.02,
  strayPrepare: 0.02,
};

export type EngineFactory = (cfg: EngineConfig, random: () => number) => Engine;

export interface SimOptions {
  readonly seed: number;
  readonly steps: number;
  readonly txnsMax: number;
  readonly faults: Faults;
  readonly onePhase: boolean;
  readonly makeEngine?: EngineFactory;
  /** Bound on the healed phase's rounds. */
  readonly healRoundsMax?: number;
}

export const engineConfig = (
  onePhase: boolean,
  prepareOrder: PrepareOrder = "parallel",
): EngineConfig => ({
  clusterId: "c1" as ClusterId,
  inFlightMax: 64,
  branchesPerTxnMax: 4,
  payloadBytesPerTxnMax: 1 << 20,
  branchWorkOverLimit: () => undefined,
  phase2Backoff: { baseMs: 20, maxMs: 400 },
  retentionMs: 500,
  clockSkewMsMax: 100,
  forgetBatchMax: 8,
  onePhase,
  prepareOrder,
  idempotencyKeysMax: 256,
  idempotencyKeyAgeMsMax: 60_000,
  callsWaitingPerTxnMax: 8,
  operatorCallsWaitingMax: 8,
});

export const participantSpecs: readonly { name: string; kind: ParticipantKind }[] = [
  { name: "pg-a", kind: "postgres" },
  { name: "pg-b", kind: "postgres" },
  { name: "redis-a", kind: "redis" },
  { name: "kafka-a", kind: "kafka" },
];

const owner: Principal = { id: "svc-a", admin: false };
const stranger: Principal = { id: "svc-b", admin: false };
const admin: Principal = { id: "ops", admin: true };

/** Work for a branch; the fakes vote no on any payload that contains `FAIL`. */
export function payloadFor(kind: ParticipantKind, rng: Rng, failing: boolean): BranchWork {
  const tag = failing ? "FAIL" : `w${rng.int(1000)}`;
  switch (kind) {
    case "postgres":
      return {
        kind: "statements",
        statements: [{ sql: `update t set v = v + 1 -- ${tag}`, params: [] }],
      };
    case "redis":
      return { kind: "ops", ops: [{ op: "incrby", key: `k:${tag}`, by: 1 }], preconditions: [] };
    case "kafka":
      return { kind: "messages", messages: [{ topic: "events", key: tag, value: "v" }] };
  }
}

const fails = (work: RecordedWork): boolean => JSON.stringify(work).includes("FAIL");

// ---- fake participants --------------------------------------------------------------------

export type FakeState = "none" | "prepared" | "committed" | "rolled-back";
export type CallOutput = Extract<
  Output,
  { type: "prepare" | "commit" | "rollback" | "commit-one-phase" | "check-one-phase" }
>;

export interface SeenEvent {
  readonly call: CallOutput["type"];
  readonly xid: Xid;
  readonly branchId: string;
  /** The durable decision for the transaction when the participant saw the call. */
  readonly durableDecision: Decision | undefined;
}

export interface FakeBranch {
  readonly xid: Xid;
  readonly kind: ParticipantKind;
  state: FakeState;
  /** How many times the branch's work was actually done (a prepare that was not redone). */
  works: number;
}

export type CallResult =
  | { type: "vote"; vote: Vote }
  | { type: "phase2"; outcome: Phase2Outcome }
  | { type: "one-phase"; committed: boolean };

export class FakeParticipant {
  readonly branches = new Map<string, FakeBranch>();
  readonly seen: SeenEvent[] = [];

  constructor(
    readonly name: string,
    readonly kind: ParticipantKind,
    protected readonly violation: (what: string) => void,
  ) {}

  private branch(xid: Xid, branchId: string): FakeBranch {
    let b = this.branches.get(branchId);
    if (!b) {
      b = { xid, kind: this.kind, state: "none", works: 0 };
      this.branches.set(branchId, b);
    }
    return b;
  }

  /** Executes one call atomically, as the participant's contract describes. */
  execute(call: CallOutput): CallResult {
    const b = this.branch(call.xid, call.branch.branchId);
    const id = call.branch.branchId;
    // Released work (payload.ts) must never reach a call that still does the work.
    const needsWork =
      call.type === "prepare" ||
      call.type === "commit-one-phase" ||
      (call.type === "commit" && this.kind === "kafka");
    if (needsWork && !isWork(call.branch.payload))
      this.violation(`${call.type} of ${id} without its work (${call.branch.payload.kind})`);
    switch (call.type) {
      case "prepare":
        if (b.state === "rolled-back") return no("tombstone", "branch was rolled back");
        if (b.state !== "none") return { type: "vote", vote: { vote: "yes" } };
        if (fails(call.branch.payload)) {
          b.state = "rolled-back";
          return no("statement-failed", "the work failed");
        }
        b.state = "prepared";
        b.works += 1;
        return { type: "vote", vote: { vote: "yes" } };
      case "commit":
        if (b.state === "committed") return phase2({ outcome: "already-done" });
        if (b.state !== "prepared") {
          this.violation(`commit of ${id} in state ${b.state} (never prepared)`);
          return phase2({ outcome: "heuristic-rollback", detail: "not prepared" });
        }
        b.state = "committed";
        return phase2({ outcome: "done" });
      case "rollback":
        if (b.state === "rolled-back") return phase2({ outcome: "already-done" });
        if (b.state === "committed") return phase2({ outcome: "heuristic-commit", detail: "" });
        b.state = "rolled-back";
        return phase2({ outcome: "done" });
      case "commit-one-phase":
        if (b.state === "committed") return { type: "one-phase", committed: true };
        if (b.state === "prepared") this.violation(`one-phase commit of prepared ${id}`);
        if (b.state !== "none" || fails(call.branch.payload)) {
          b.state = "rolled-back";
          return { type: "one-phase", committed: false };
        }
        b.state = "committed";
        b.works += 1;
        return { type: "one-phase", committed: true };
      case "check-one-phase":
        // Fences the marker key first, as the PostgreSQL participant does (INSERT fence ON
        // CONFLICT DO NOTHING): a one-phase commit arriving later fails on the key.
        if (b.state === "none") b.state = "rolled-back";
        return { type: "one-phase", committed: b.state === "committed" };
    }
  }
}

const no = (reason: string, detail: string): CallResult => ({
  type: "vote",
  vote: { vote: "no", reason, detail },
});
const phase2 = (outcome: Phase2Outcome): CallResult => ({ type: "phase2", outcome });

/** What the shell feeds back for a call; `undefined` is an error or a timeout. */
export function answerOf(call: CallOutput, result: CallResult | undefined): Input {
  const { xid } = call;
  const n = call.branch.n;
  switch (call.type) {
    case "prepare":
      return {
        type: "voted",
        xid,
        n,
        vote:
          result?.type === "vote"
            ? branchVote(result.vote)
            : failedVote({ code: "unavailable", message: "unavailable", retryable: true }),
      };
    case "commit":
    case "rollback":
      return result?.type === "phase2"
        ? { type: "phase2-done", xid, n, outcome: result.outcome }
        : {
            type: "phase2-failed",
            xid,
            n,
            error: { code: "unavailable", message: "unavailable", retryable: true },
          };
    case "commit-one-phase":
    case "check-one-phase":
      return {
        type: "one-phase-done",
        xid,
        outcome:
          result?.type !== "one-phase"
            ? { outcome: "unknown", detail: "unavailable" }
            : result.committed
              ? { outcome: "committed" }
              : { outcome: "aborted", reason: "not-committed", detail: "marker absent" },
      };
  }
}

// ---- the harness's model of the durable log -----------------------------------------------

interface ModelTxn {
  deadlineMs: number;
  onePhase: boolean;
  branches: readonly BranchSpec[];
  preparingDurable: boolean;
  decision?: Decision;
  decisionIndex?: number;
}

// ---- clients ------------------------------------------------------------------------------

interface ClientTxn {
  readonly xid: Xid;
  readonly life: number;
  readonly deadlineMs: number;
  readonly beginKey: string;
  /** Enlist idempotency key → what was sent (keys are per principal) and the branch it got. */
  readonly enlists: Map<
    string,
    { participant: string; fingerprint: string; principal: Principal; branch?: number }
  >;
  /** Participants that got a new branch (created: true) → that branch's number. */
  readonly created: Map<string, number>;
  /** The category of the first final answer to a commit or abort. */
  answered?: Decision;
}

type Request =
  | { type: "begin"; key: string; priorXid?: Xid }
  | {
      type: "enlist";
      xid: Xid;
      wrong: boolean;
      key: string;
      participant: string;
      fingerprint: string;
      /** For a retry with the same body, the branch the first call got. */
      expectBranch?: number;
      /** Same key, another body: must be refused. */
      reused: boolean;
    }
  | { type: "prepare" | "commit" | "abort"; xid: Xid; wrong: boolean }
  | { type: "recovery" };

// ---- the simulator ------------------------------------------------------------------------

export interface SimStats {
  txns: number;
  committed: number;
  aborted: number;
  crashes: number;
  appendFailures: number;
  steps: number;
  healRounds: number;
  onePhaseCommits: number;
  orphansRolledBack: number;
}

export interface SimResult {
  readonly seed: number;
  readonly violations: readonly string[];
  readonly stats: SimStats;
  /** The last events, to read a failure by. */
  readonly trace: readonly string[];
}

const traceMax = Number(process.env.TRACE_MAX ?? 80);

export class Sim {
  private readonly rng: Rng;
  private readonly cfg: EngineConfig;
  private readonly makeEngine: EngineFactory;
  private faults: Faults;
  private engine: Engine;
  private nowMs = 1_000;
  private term = 1;
  private life = 1;
  private step = 0;
  private nextReq = 1;
  private nextXid = 1;
  private nextKey = 1;

  private readonly durable: Entry[] = [];
  private pending: { record: LogRecord; term: Term; proposal: Proposal }[] = [];
  /** Durable entries a new leader has not applied yet: it is catching up. */
  private lagging: Entry[] = [];
  private calls: CallOutput[] = [];
  private answers: Input[] = [];
  private readonly model = new Map<Xid, ModelTxn>();
  private readonly clients: ClientTxn[] = [];
  private requests = new Map<number, Request>();
  /** Transaction → the terms whose leader received a no vote for it. */
  private readonly noVoted = new Map<Xid, Set<number>>();
  private readonly clientAborted = new Set<Xid>();
  /** Transactions told `aborted` because the leader never saw them: they must never commit. */
  private readonly presumedAborted = new Set<Xid>();
  /**
   * Forgotten transactions: once forgotten, a transaction is unknown and would be answered as
   * presumed aborted even if it committed, so clients stop asking about it (the retention time
   * is how long answers about a finished transaction stay true).
   */
  private readonly forgotten = new Set<Xid>();
  /** Branches that any life sent a commit or rollback. */
  private readonly phase2Sent = new Set<string>();
  /** Prepare calls out and not yet answered, per branch, in this life. */
  private preparesOut = new Map<string, number>();
  /** Recovery scans under way: what the participants listed, and when the scan began. */
  private scans: { startedAtIndex: number; found: FoundBranches[] }[] = [];
  private lastRecoverMs = 0;
  /** The last scans of the healed phase found work to do. */
  private scanActed = false;
  readonly participants: FakeParticipant[];
  readonly violations: string[] = [];
  private readonly trace: string[] = [];
  readonly stats: SimStats = {
    txns: 0,
    committed: 0,
    aborted: 0,
    crashes: 0,
    appendFailures: 0,
    steps: 0,
    healRounds: 0,
    onePhaseCommits: 0,
    orphansRolledBack: 0,
  };

  constructor(private readonly opts: SimOptions) {
    this.rng = new Rng(opts.seed);
    // Both prepare orders, by seed (a replayed seed runs the same one).
    this.cfg = engineConfig(opts.onePhase, opts.seed % 3 === 0 ? "ordered" : "parallel");
    this.faults = opts.faults;
    this.makeEngine = opts.makeEngine ?? ((cfg, random) => new Engine(cfg, random));
    this.participants = participantSpecs.map(
      (p) => new FakeParticipant(p.name, p.kind, (what) => this.violate("G1", what)),
    );
    this.engine = this.makeEngine(this.cfg, () => this.rng.next());
    this.emit(this.engine.becomeLeader(this.term as Term, this.nowMs));
  }

  /** Fault phase, then a healed phase, then the final checks. Stops at the first violation. */
  run(): SimResult {
    for (this.step = 1; this.step <= this.opts.steps && this.violations.length === 0; this.step++) {
      this.guard(() => this.randomStep());
      this.stats.steps = this.step;
    }
    if (this.violations.length === 0) this.guard(() => this.heal());
    if (this.violations.length === 0) this.finalChecks();
    return {
      seed: this.opts.seed,
      violations: this.violations,
      stats: this.stats,
      trace: this.trace,
    };
  }

  // ---- steps --------------------------------------------------------------------------------

  private randomStep(): void {
    const f = this.faults;
    if (this.rng.chance(f.crash)) return this.crash();
    if (this.rng.chance(f.appendFail) && this.pending.length > 0) return this.failAppend();
    if (this.rng.chance(f.clockJump)) this.nowMs += 500 + this.rng.int(3000);
    if (this.rng.chance(f.strayPrepare)) this.strayPrepare();
    this.nowMs += this.rng.int(25);
    const roll = this.rng.next();
    if (roll < 0.04) this.startScan();
    else if (roll < 0.08) this.deliverScan();
    else if (roll < 0.35) this.clientStep();
    else if (roll < 0.55) this.deliverCall();
    else if (roll < 0.72) this.deliverAnswer();
    else if (roll < 0.87) this.flush(1 + this.rng.int(Math.max(1, this.pending.length)));
    else if (roll < 0.97) this.feed({ type: "tick" });
    else this.readView();
  }

  /** Runs one step; an engine that throws is a violation too, after the checkers had a look. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.checkTable();
      this.violate("crash", `engine threw: ${e instanceof Error ? e.stack : String(e)}`);
    }
  }

  private feed(input: Input): void {
    this.note(`in  ${describeInput(input)}`);
    if (input.type === "voted" || input.type === "phase2-done" || input.type === "phase2-failed") {
      this.trackAnswer(input);
    }
    this.emit(this.engine.handle(input, this.nowMs));
    this.checkTable();
  }

  private trackAnswer(input: Extract<Input, { type: "voted" | "phase2-done" | "phase2-failed" }>) {
    if (input.type !== "voted") return;
    const id = `${input.xid}:${input.n}`;
    this.preparesOut.set(id, (this.preparesOut.get(id) ?? 1) - 1);
    if (input.vote.vote === "no") {
      const terms = this.noVoted.get(input.xid) ?? new Set<number>();
      this.noVoted.set(input.xid, terms.add(this.term));
    }
  }

  private emit(outputs: readonly Output[]): void {
    for (const o of outputs) {
      this.note(`out ${describeOutput(o)}`);
      switch (o.type) {
        case "append":
          this.checkProposal(o.record);
          this.pending.push({ record: o.record, term: this.term as Term, proposal: o.proposal });
          break;
        case "prepare": {
          const id = `${o.xid}:${o.branch.n}`;
          const out = this.preparesOut.get(id) ?? 0;
          if (out > 0) this.violate("G5", `prepare of ${id} sent again while one is in flight`);
          this.preparesOut.set(id, out + 1);
          this.calls.push(o);
          break;
        }
        case "commit":
        case "rollback": {
          // A first call skips the participant's own check (Kafka's marker): none may precede it.
          const id = o.branch.branchId;
          if (o.firstCall === true && this.phase2Sent.has(id))
            this.violate("G5", `${o.type} of ${id} says it is the first, after an earlier one`);
          this.phase2Sent.add(id);
          this.calls.push(o);
          break;
        }
        case "commit-one-phase":
        case "check-one-phase":
          this.calls.push(o);
          break;
        case "forgotten":
          for (const b of o.branches) this.checkForgotten(b);
          break;
        case "reply":
          this.checkReply(o.req, o.reply);
          break;
      }
    }
  }

  // ---- the log ------------------------------------------------------------------------------

  /** The first `count` pending appends become durable, in order, and are applied. */
  private flush(count: number): void {
    for (const entry of this.lagging.splice(0)) this.feed({ type: "applied", entry });
    const batch = this.pending.splice(0, count);
    for (const p of batch) {
      const entry: Entry = {
        index: (this.durable.length + 1) as LogIndex,
        term: p.term,
        record: p.record,
      };
      this.durable.push(entry);
      this.modelApply(entry);
      this.feed({ type: "applied", entry, proposal: p.proposal });
    }
  }

  /** An append fails: lost with everything after it, or (ambiguous failure) written anyway. */
  private failAppend(): void {
    this.stats.appendFailures += 1;
    const at = this.rng.int(this.pending.length);
    const written = this.rng.chance(0.5);
    const failed = written ? this.pending.slice(at, at + 1) : this.pending.splice(at);
    for (const p of failed) {
      this.feed({
        type: "append-failed",
        record: p.record,
        proposal: p.proposal,
        error: written ? "timeout" : "lost",
      });
    }
  }

  private modelApply(entry: Entry): void {
    const r = entry.record;
    const get = (xid: Xid): ModelTxn | undefined => this.model.get(xid);
    switch (r.type) {
      case "preparing": {
        const m = get(r.txn.xid);
        if (m?.preparingDurable) return;
        this.model.set(r.txn.xid, {
          ...(m ?? {}),
          deadlineMs: r.txn.deadlineMs,
          onePhase: r.onePhase,
          branches: r.branches,
          preparingDurable: true,
        });
        if (
          r.branches.some(
            (b, i) => r.branches.findIndex((c) => c.participant === b.participant) !== i,
          )
        )
          this.violate("G5", `${r.txn.xid} has two branches on one participant`);
        const client = this.clients.find((c) => c.xid === r.txn.xid);
        if (client && client.created.size !== r.branches.length) {
          this.violate(
            "G5",
            `${r.txn.xid} preparing ${r.branches.length} branch(es), client created ${client.created.size}`,
          );
        }
        return;
      }
      case "decide": {
        let m = get(r.xid);
        if (!m) {
          if (!r.txn) return this.violate("G2", `decide for ${r.xid} unknown to the log`);
          m = {
            deadlineMs: r.txn.deadlineMs,
            onePhase: false,
            branches: r.branches ?? [],
            preparingDurable: false,
          };
          this.model.set(r.xid, m);
        }
        if (m.decision !== undefined) return; // compare-and-set: the first holds
        m.decision = r.decision;
        m.decisionIndex = entry.index;
        if (r.decision === "abort") return void (this.stats.aborted += 1);
        this.stats.committed += 1;
        if (r.acks) this.stats.onePhaseCommits += 1;
        // A leader that saw a no vote never commits; one that crashed before its abort was
        // durable took that knowledge with it, and a new leader may prepare again.
        if (this.noVoted.get(r.xid)?.has(entry.term))
          this.violate("G4", `${r.xid} committed after a no vote in term ${entry.term}`);
        if (this.presumedAborted.has(r.xid))
          this.violate("G7", `${r.xid} committed after a client was told aborted`);
        if (!r.acks && r.atMs > m.deadlineMs)
          this.violate(
            "G4",
            `${r.xid} commit decided at ${r.atMs}, past its deadline ${m.deadlineMs}`,
          );
        return;
      }
      case "acks":
        return;
      case "forget":
        for (const xid of r.xids) this.forgotten.add(xid);
        return;
      case "recover": {
        this.lastRecoverMs = r.atMs;
        const m = get(r.xid);
        if (r.txn && m?.decision === "commit")
          this.violate("G3", `recovery presumed ${r.xid} aborted; the log had it committed`);
        if (!m || (r.txn && this.forgotten.has(r.xid))) {
          if (!r.txn) return this.violate("G3", `recover of ${r.xid}, unknown, without a header`);
          this.stats.orphansRolledBack += r.branches.length;
          this.model.set(r.xid, {
            deadlineMs: r.txn.deadlineMs,
            onePhase: false,
            branches: r.branches,
            preparingDurable: false,
            decision: "abort",
            decisionIndex: entry.index,
          });
          return;
        }
        if (m.decision === undefined) return; // the table ignores it: still living
        const known = new Set(m.branches.map((b) => b.n));
        m.branches = [...m.branches, ...r.branches.filter((b) => !known.has(b.n))];
        return;
      }
    }
  }

  /** Durable decision of a transaction, from the harness's own model of the log. */
  private decisionOf(xid: Xid): Decision | undefined {
    return this.model.get(xid)?.decision;
  }

  // ---- participants -------------------------------------------------------------------------

  private participant(name: string): FakeParticipant {
    const p = this.participants.find((q) => q.name === name);
    if (!p) throw new Error(`no participant ${name}`);
    return p;
  }

  /** The participant sees one call; G1 is checked at that very moment. */
  private execute(call: CallOutput): CallResult {
    const p = this.participant(call.branch.participant);
    const decision = this.decisionOf(call.xid);
    p.seen.push({
      call: call.type,
      xid: call.xid,
      branchId: call.branch.branchId,
      durableDecision: decision,
    });
    const id = call.branch.branchId;
    if (call.type === "commit" && decision !== "commit")
      this.violate("G1", `commit of ${id} while the durable decision is ${decision ?? "none"}`);
    if (call.type === "rollback" && decision !== "abort")
      this.violate("G1", `rollback of ${id} while the durable decision is ${decision ?? "none"}`);
    if (call.type === "commit-one-phase") {
      const m = this.model.get(call.xid);
      if (!m?.preparingDurable || !m.onePhase || decision !== undefined)
        this.violate("G1", `one-phase commit of ${id} without a durable one-phase preparing entry`);
    }
    if (call.type === "commit" && call.branch.kind === "kafka") {
      for (const b of this.model.get(call.xid)?.branches ?? []) {
        if (b.kind === "kafka") continue;
        const state = this.participant(b.participant).branches.get(b.branchId)?.state;
        if (state !== "committed")
          this.violate(
            "G7",
            `kafka ${id} committed while database branch ${b.branchId} is ${state ?? "none"}`,
          );
      }
    }
    return p.execute(call);
  }

  private deliverCall(): void {
    if (this.calls.length === 0) return;
    const call = this.calls.splice(this.rng.int(this.calls.length), 1)[0];
    if (!call) return;
    this.note(`call ${call.type} ${call.branch.branchId}`);
    const f = this.faults;
    const transient = this.rng.chance(f.transient);
    const lost = !transient && this.rng.chance(f.noAnswer);
    if (transient || (lost && this.rng.chance(0.5))) return this.answer(call, undefined);
    const result = this.execute(call);
    this.answer(call, lost ? undefined : result);
  }

  /** Queues what the shell feeds back; `undefined` is an error or a timeout. */
  private answer(call: CallOutput, result: CallResult | undefined): void {
    this.answers.push(answerOf(call, result));
  }

  private deliverAnswer(): void {
    if (this.answers.length === 0) return;
    const input = this.answers.splice(this.rng.int(this.answers.length), 1)[0];
    if (input) this.feed(input);
  }

  // ---- recovery -----------------------------------------------------------------------------

  /** A service prepared a branch it enlisted, on its own: the log may never hear of it. */
  private strayPrepare(): void {
    const candidates = this.clients.filter((c) => !this.forgotten.has(c.xid) && c.created.size);
    if (candidates.length === 0) return;
    const c = this.rng.pick(candidates);
    // Only a service-prepared branch is prepared outside the engine, and such a transaction is
    // never committed in one phase; the fakes' branches stand for one when there are two or more.
    if (this.cfg.onePhase && c.created.size < 2) return;
    const [name, n] = this.rng.pick([...c.created.entries()]);
    const p = this.participant(name);
    if (p.kind === "kafka") return;
    const branchId = `${this.cfg.clusterId}:${c.xid}:${n}`;
    const b = p.branches.get(branchId);
    if (b && b.state !== "none") return; // prepared already, or rolled back (a tombstone)
    this.note(`stray prepare ${branchId}`);
    p.branches.set(branchId, { xid: c.xid, kind: p.kind, state: "prepared", works: 1 });
  }

  /** A scan lists each participant's prepared branches now; its result arrives later. */
  private startScan(): void {
    this.scans.push({
      startedAtIndex: this.engine.table.appliedIndex,
      found: this.participants.map((p) => ({
        participant: p.name,
        kind: p.kind,
        branchIds: [...p.branches].filter(([, b]) => b.state === "prepared").map(([id]) => id),
      })),
    });
  }

  private deliverScan(): void {
    const scan = this.scans.shift();
    if (!scan) return;
    const req = this.nextReq++;
    this.requests.set(req, { type: "recovery" });
    this.feed({ type: "recovered", req, ...scan });
  }

  // ---- crashes ------------------------------------------------------------------------------

  /** The node dies: unsynced appends are gone; calls on the wire reached the participant or not. */
  private crash(): void {
    this.stats.crashes += 1;
    this.note(`crash (life ${this.life})`);
    this.pending = [];
    for (const call of this.calls) if (this.rng.chance(0.5)) this.execute(call);
    this.calls = [];
    this.answers = [];
    this.requests = new Map();
    this.preparesOut = new Map();
    this.scans = [];
    this.life += 1;
    this.term += 1;
    this.nowMs += this.rng.int(200);
    this.engine = this.makeEngine(this.cfg, () => this.rng.next());
    // Sometimes the new leader starts before its table holds the whole log: the rest is
    // applied by later steps, and meanwhile it must serve nothing that depends on the table.
    const replayed = this.rng.chance(0.3) ? this.rng.int(this.durable.length + 1) : undefined;
    this.lagging = this.durable.slice(replayed ?? this.durable.length);
    for (const entry of this.durable.slice(0, replayed)) {
      const out = this.engine.handle({ type: "applied", entry }, this.nowMs);
      if (out.length > 0) this.violate("replay", `replay of ${entry.index} produced output`);
    }
    this.checkTable();
    this.emit(this.engine.becomeLeader(this.term as Term, this.nowMs, this.durable.length));
    this.checkTable();
  }

  // ---- clients ------------------------------------------------------------------------------

  private send(req: Request, input: Extract<Input, { req: number }>): void {
    this.requests.set(input.req, req);
    this.feed(input);
  }

  private clientStep(): void {
    const open = this.clients.filter(
      (c) => c.life === this.life && c.answered === undefined && !this.forgotten.has(c.xid),
    );
    const roll = this.rng.next();
    if (open.length === 0 || (roll < 0.15 && this.clients.length < this.opts.txnsMax)) {
      if (this.clients.length < this.opts.txnsMax) return this.begin();
    }
    const known = this.clients.filter((x) => !this.forgotten.has(x.xid));
    const any = known.length > 0 ? this.rng.pick(known) : undefined;
    const c = open.length > 0 && this.rng.chance(0.85) ? this.rng.pick(open) : any;
    if (!c) return;
    const wrong = this.rng.chance(0.05);
    const principal = wrong ? stranger : this.rng.chance(0.05) ? admin : owner;
    const r = this.rng.next();
    if (r < 0.45) return this.enlist(c, principal, wrong);
    const type = r < 0.55 ? "prepare" : r < 0.9 ? "commit" : "abort";
    if (type === "abort" && !wrong) this.clientAborted.add(c.xid);
    const req = this.nextReq++;
    this.send({ type, xid: c.xid, wrong }, { type, req, principal, xid: c.xid });
  }

  private begin(): void {
    const retry = this.clients.length > 0 && this.rng.chance(0.1);
    const prior = retry ? this.rng.pick(this.clients) : undefined;
    const key = prior?.beginKey ?? `b${this.nextKey++}`;
    // The key answers for the last transaction it created (a restart forgets begin keys).
    const latest = [...this.clients].reverse().find((c) => c.beginKey === key);
    const xid = `x${this.nextXid++}` as Xid;
    const req = this.nextReq++;
    this.send(
      { type: "begin", key, ...(latest ? { priorXid: latest.xid } : {}) },
      {
        type: "begin",
        req,
        principal: owner,
        xid,
        timeoutMs: 200 + this.rng.int(2500),
        labels: {},
        idem: { key, fingerprint: "begin" },
      },
    );
  }

  private enlist(c: ClientTxn, caller: Principal, wrong: boolean): void {
    const req = this.nextReq++;
    const earlier = [...c.enlists.entries()];
    const retry = earlier.length > 0 && this.rng.chance(0.25) ? this.rng.pick(earlier) : undefined;
    // A key is its principal's: a retry or a reuse comes from the one that used it first.
    const principal = retry && !wrong ? retry[1].principal : caller;
    if (retry && this.rng.chance(0.8)) {
      // The same call again: same key, same body.
      const [key, sent] = retry;
      const spec = this.participant(sent.participant);
      const body = JSON.parse(sent.fingerprint) as { payload: BranchWork };
      return this.send(
        {
          type: "enlist",
          xid: c.xid,
          wrong,
          key,
          participant: sent.participant,
          fingerprint: sent.fingerprint,
          ...(sent.branch !== undefined ? { expectBranch: sent.branch } : {}),
          reused: false,
        },
        {
          type: "enlist",
          req,
          principal,
          xid: c.xid,
          participant: spec.name,
          kind: spec.kind,
          payload: body.payload,
          payloadBytes: JSON.stringify(body.payload).length,
          idem: { key, fingerprint: sent.fingerprint },
        },
      );
    }
    const spec = this.rng.pick(this.participants);
    const payload = payloadFor(spec.kind, this.rng, this.rng.chance(this.faults.failingWork));
    const fingerprint = JSON.stringify({ participant: spec.name, payload });
    // Sometimes a key already used, with another body: it must be refused.
    const key = retry ? retry[0] : `e${this.nextKey++}`;
    // A refused call (another principal's) holds no key: its retries come from the owner.
    if (!retry)
      c.enlists.set(key, {
        participant: spec.name,
        fingerprint,
        principal: wrong ? owner : principal,
      });
    this.send(
      {
        type: "enlist",
        xid: c.xid,
        wrong,
        key,
        participant: spec.name,
        fingerprint,
        // Only a key the engine accepted is bound to its body.
        reused: retry?.[1].branch !== undefined && retry[1].fingerprint !== fingerprint,
      },
      {
        type: "enlist",
        req,
        principal,
        xid: c.xid,
        participant: spec.name,
        kind: spec.kind,
        payload,
        payloadBytes: JSON.stringify(payload).length,
        idem: { key, fingerprint },
      },
    );
  }

  private readView(): void {
    if (this.clients.length === 0) return;
    const c = this.rng.pick(this.clients);
    const view = this.engine.view(c.xid);
    if (!view) return;
    const d = this.decisionOf(c.xid);
    if (view.decision !== undefined && view.decision !== d)
      this.violate("G7", `view of ${c.xid} says ${view.decision}, the log ${d ?? "nothing"}`);
    this.checkStateAnswer(c.xid, view.state, "view");
  }

  // ---- checkers -----------------------------------------------------------------------------

  /** G4: every abort the engine proposes has a reason that allows it. */
  private checkProposal(r: LogRecord): void {
    if (r.type === "recover" && r.txn) {
      // Recovery never hurts the living: a transaction this leader drives is not presumed aborted.
      const c = this.clients.find((x) => x.xid === r.xid);
      if (c?.life === this.life && !this.forgotten.has(r.xid))
        this.violate("living", `recovery presumed ${r.xid} aborted while this leader drives it`);
      if (this.model.has(r.xid) && !this.forgotten.has(r.xid))
        this.violate("G2", `recovery presumed ${r.xid} unknown, but the log holds it`);
    }
    if (r.type !== "decide" || r.decision !== "abort") return;
    const m = this.model.get(r.xid);
    const c = this.clients.find((x) => x.xid === r.xid);
    const deadlineMs = r.txn?.deadlineMs ?? m?.deadlineMs ?? c?.deadlineMs;
    switch (r.code) {
      case "deadline-passed":
        if (deadlineMs === undefined || r.atMs <= deadlineMs)
          this.violate(
            "G4",
            `${r.xid} aborted for its deadline at ${r.atMs}, deadline ${deadlineMs}`,
          );
        return;
      case "client-abort":
        if (!this.clientAborted.has(r.xid))
          this.violate("G4", `${r.xid} aborted for a client that did not ask`);
        return;
      case "vote-no":
      case "prepare-failed":
        // A one-phase commit that did not commit carries its ack; otherwise a no vote came in.
        if (!r.acks && !this.noVoted.get(r.xid)?.has(this.term))
          this.violate("G4", `${r.xid} aborted for a no vote never received`);
        return;
      default:
        this.violate("G4", `${r.xid} aborted for an unexpected reason: ${r.code} ${r.reason}`);
    }
  }

  /** G2: the engine's table holds, for every transaction, the first durable decision. */
  private checkTable(): void {
    const applied = this.engine.table.appliedIndex;
    for (const t of this.engine.table.all()) {
      const xid = t.header.xid;
      // A leader catching up has not applied what is still lagging behind: checked later.
      const index = this.model.get(xid)?.decisionIndex;
      if (index !== undefined && index > applied) continue;
      const d = this.decisionOf(xid);
      if (t.decision?.decision !== d) {
        this.violate(
          "G2",
          `table says ${xid} is ${t.decision?.decision ?? "undecided"}, the log ${d ?? "undecided"}`,
        );
      } else if (t.decision && t.decision.index !== this.model.get(xid)?.decisionIndex) {
        this.violate(
          "G2",
          `table holds ${xid}'s decision from entry ${t.decision.index}, not the first`,
        );
      }
    }
  }

  private checkForgotten(b: BranchSpec): void {
    const d = this.decisionOf(b.branchId.split(":")[1] as Xid);
    const state = this.participant(b.participant).branches.get(b.branchId)?.state ?? "none";
    const ok = d === "commit" ? state === "committed" : state === "none" || state === "rolled-back";
    if (!ok)
      this.violate("G3", `${b.branchId} forgotten in state ${state}, decision ${d ?? "none"}`);
  }

  /** G7: a state told to anyone matches the durable log. */
  private checkStateAnswer(xid: Xid, state: string, to: string): void {
    const d = this.decisionOf(xid);
    if ((state === "committed" || state === "committing") && d !== "commit")
      this.violate("G7", `${to} told ${xid} ${state}, the log says ${d ?? "undecided"}`);
    if ((state === "aborted" || state === "aborting") && d !== "abort") {
      if (d === "commit") this.violate("G7", `${to} told ${xid} ${state}, the log says commit`);
      else this.presumedAborted.add(xid);
    }
  }

  private checkReply(reqId: number, reply: Reply): void {
    const req = this.requests.get(reqId);
    if (!req) return this.violate("reply", `reply to unknown request ${reqId}`);
    this.requests.delete(reqId);
    if (reply.kind === "error" && reply.code === "forbidden" && !("wrong" in req && req.wrong))
      return this.violate("trust", `owner refused: ${reply.message}`);
    if ("wrong" in req && req.wrong && reply.kind !== "error") {
      const unknown = reply.kind === "txn" && reply.view.reason?.code === "presumed-abort";
      if (!unknown) return this.violate("trust", `a stranger got ${JSON.stringify(reply)}`);
    }
    switch (req.type) {
      case "begin":
        return this.beginReplied(req, reply);
      case "enlist":
        return this.enlistReplied(req, reply);
      case "prepare":
      case "commit":
      case "abort":
        return this.outcomeReplied(req, reply);
      case "recovery":
        // Only a leader still catching up with the log may turn a scan away (ask again later).
        if (reply.kind !== "recovery" && !(reply.kind === "error" && reply.code === "unavailable"))
          this.violate("reply", `a scan answered ${reply.kind}`);
        else if (reply.kind === "recovery" && reply.report.committed + reply.report.rolledBack > 0)
          this.scanActed = true;
        return;
    }
  }

  private beginReplied(req: Extract<Request, { type: "begin" }>, reply: Reply): void {
    if (reply.kind !== "txn") return;
    if (reply.created === false) {
      if (reply.view.xid !== req.priorXid)
        this.violate(
          "G5",
          `begin retry with key ${req.key} answered ${reply.view.xid}, not ${req.priorXid}`,
        );
      return;
    }
    this.stats.txns += 1;
    this.clients.push({
      xid: reply.view.xid,
      life: this.life,
      deadlineMs: reply.view.deadlineMs,
      beginKey: req.key,
      enlists: new Map(),
      created: new Map(),
    });
  }

  private enlistReplied(req: Extract<Request, { type: "enlist" }>, reply: Reply): void {
    const c = this.clients.find((x) => x.xid === req.xid);
    if (!c || req.wrong) return;
    if (req.reused) {
      if (reply.kind === "branch")
        this.violate(
          "G5",
          `enlist key ${req.key} reused with another body on ${req.xid} was accepted`,
        );
      return;
    }
    if (reply.kind !== "branch") return;
    const sent = c.enlists.get(req.key);
    // A replay answers as the first call did (same branch, same `created`).
    if (req.expectBranch !== undefined && reply.branch !== req.expectBranch)
      this.violate(
        "G5",
        `retried enlist ${req.key} on ${req.xid} got branch ${reply.branch} (created ${reply.created}), first ${req.expectBranch}`,
      );
    if (sent && sent.branch === undefined) sent.branch = reply.branch;
    if (reply.created) {
      // A replay whose first answer was lost says created again, for the same branch.
      const first = c.created.get(req.participant);
      if (first !== undefined && first !== reply.branch)
        this.violate("G5", `a second branch on ${req.participant} for ${req.xid}`);
      c.created.set(req.participant, reply.branch);
    }
  }

  private outcomeReplied(
    req: Extract<Request, { type: "prepare" | "commit" | "abort" }>,
    reply: Reply,
  ): void {
    const d = this.decisionOf(req.xid);
    if (reply.kind !== "txn" && reply.kind !== "error")
      return this.violate("reply", `${req.type} answered with ${reply.kind}`);
    if (reply.kind === "error") {
      if (reply.code === "transaction-committed" && d !== "commit")
        this.violate(
          "G7",
          `abort of ${req.xid} refused as committed; the log says ${d ?? "undecided"}`,
        );
      return;
    }
    const state = reply.view.state;
    this.checkStateAnswer(req.xid, state, `${req.type} reply`);
    if (req.wrong) return;
    const final =
      state === "committed" || state === "committing"
        ? "commit"
        : state === "aborted" || state === "aborting"
          ? "abort"
          : undefined;
    if (req.type !== "prepare" && final === undefined)
      this.violate(
        "G7",
        `${req.type} of ${req.xid} answered ${state}, neither committed nor aborted`,
      );
    if (req.type === "prepare" && state !== "prepared" && final === undefined)
      this.violate("G7", `prepare of ${req.xid} answered ${state}`);
    const c = this.clients.find((x) => x.xid === req.xid);
    if (!c || final === undefined) return;
    if (c.answered !== undefined && c.answered !== final)
      this.violate("G5", `${req.xid} answered ${final} after ${c.answered}`);
    c.answered ??= final;
  }

  // ---- the healed phase ---------------------------------------------------------------------

  /** No more faults and no more clients: everything must settle within a bounded number of rounds. */
  private heal(): void {
    this.faults = {
      crash: 0,
      failingWork: 0,
      transient: 0,
      noAnswer: 0,
      appendFail: 0,
      clockJump: 0,
      strayPrepare: 0,
    };
    const roundsMax = this.opts.healRoundsMax ?? 400;
    const latestMs = Math.max(this.nowMs, ...this.clients.map((c) => c.deadlineMs));
    // A transaction recovery creates late finishes late: its retention counts from then.
    const settledAfterMs = () =>
      Math.max(latestMs, this.lastRecoverMs) +
      this.cfg.retentionMs +
      this.cfg.clockSkewMsMax +
      this.cfg.phase2Backoff.maxMs;
    for (let round = 1; round <= roundsMax; round++) {
      this.stats.healRounds = round;
      this.startScan();
      this.flush(this.pending.length);
      this.scanActed = false;
      while (this.scans.length > 0) this.deliverScan();
      while (this.calls.length > 0 && this.violations.length === 0) this.deliverCall();
      while (this.answers.length > 0 && this.violations.length === 0) this.deliverAnswer();
      this.nowMs += 100;
      this.feed({ type: "tick" });
      const quiet =
        this.lagging.length === 0 &&
        this.pending.length === 0 &&
        this.calls.length === 0 &&
        this.answers.length === 0 &&
        !this.scanActed;
      const settled = this.nowMs > settledAfterMs();
      if ((quiet && settled) || this.violations.length > 0) return;
    }
    this.violate("G3", `not quiet after ${roundsMax} healed rounds`);
  }

  private finalChecks(): void {
    const undecidedXids = new Set<Xid>();
    for (const [xid, m] of this.model) {
      if (m.decision === undefined) {
        undecidedXids.add(xid);
        this.violate("G3", `${xid} is still undecided after the healed phase`);
        continue;
      }
      for (const b of m.branches) {
        const state = this.participant(b.participant).branches.get(b.branchId)?.state ?? "none";
        const ok =
          m.decision === "commit"
            ? state === "committed"
            : state !== "committed" && state !== "prepared";
        if (!ok) this.violate("G3", `${b.branchId} is ${state}, decision ${m.decision}`);
      }
    }
    // A branch the log does not list for a decided transaction must hold nothing.
    for (const p of this.participants) {
      for (const [id, b] of p.branches) {
        const listed = this.model.get(b.xid)?.branches.some((s) => s.branchId === id) ?? false;
        if (!listed && (b.state === "prepared" || b.state === "committed"))
          this.violate("G3", `${id} is ${b.state} but the log does not list it`);
        if (b.works > 1) this.violate("G5", `${id}'s work was done ${b.works} times`);
      }
    }
    // Finished transactions are forgotten once their retention has passed.
    for (const t of this.engine.table.all()) {
      const state = durableState(t);
      if ((state === "committed" || state === "aborted") && heuristicOf(t) === undefined)
        this.violate("G3", `${t.header.xid} finished but never forgotten`);
    }
  }

  // ---- bookkeeping --------------------------------------------------------------------------

  private violate(rule: string, what: string): void {
    this.violations.push(`${rule}: ${what} (step ${this.step}, life ${this.life})`);
  }

  private note(what: string): void {
    this.trace.push(`${this.step}@${this.nowMs} ${what}`);
    if (this.trace.length > traceMax) this.trace.shift();
  }
}

export function describeInput(i: Input): string {
  switch (i.type) {
    case "applied":
      return `applied #${i.entry.index} ${describeRecord(i.entry.record)}`;
    case "append-failed":
      return `append-failed ${describeRecord(i.record)} (${i.error})`;
    case "voted":
      return `voted ${i.xid}:${i.n} ${i.vote.vote}`;
    case "phase2-done":
      return `phase2-done ${i.xid}:${i.n} ${i.outcome.outcome}`;
    case "phase2-failed":
      return `phase2-failed ${i.xid}:${i.n}`;
    case "one-phase-done":
      return `one-phase-done ${i.xid} ${i.outcome.outcome}`;
    case "tick":
      return "tick";
    case "begin":
      return `begin ${i.xid} req ${i.req}`;
    case "enlist":
      return `enlist ${i.xid} ${i.participant} req ${i.req} as ${i.principal.id} key ${i.idem?.key}`;
    case "recovered":
      return `recovered req ${i.req} from #${i.startedAtIndex}: ${i.found.map((f) => f.branchIds.join(" ")).join(" ")}`;
    case "drain":
    case "abandon":
      return i.type;
    case "admin-list":
      return `admin-list req ${i.req}`;
    default:
      return `${i.type} ${i.xid} req ${i.req} as ${i.principal.id}`;
  }
}

const keysOf = (keys: readonly LoggedKey[] | undefined): string =>
  keys ? ` keys=${keys.map((k) => k.key).join(",")}` : "";

function evidenceText(evidence: Readonly<Record<string, string>> | undefined): string {
  if (evidence === undefined) return "";
  return ` evidence=[${Object.entries(evidence)
    .map(([n, e]) => `${n}:${e}`)
    .join(" ")}]`;
}

export function describeRecord(r: LogRecord): string {
  switch (r.type) {
    case "preparing":
      return `preparing ${r.txn.xid} [${r.branches.map((b) => `${b.n}:${b.participant}`).join(" ")}]${r.onePhase ? " one-phase" : ""}${r.prepareOnly ? " prepare-only" : ""}${keysOf(r.keys)}`;
    case "decide":
      return `decide ${r.xid} ${r.decision} (${r.reason})${r.acks ? ` acks=${r.acks.length}` : ""}${evidenceText(r.evidence)}${keysOf(r.keys)}`;
    case "acks":
      return `acks ${r.acks.map((a) => `${a.xid}:${a.n}=${a.outcome}`).join(" ")}`;
    case "forget":
      return `forget ${r.xids.join(" ")}`;
    case "recover":
      return `recover ${r.xid} [${r.branches.map((b) => `${b.n}:${b.participant}`).join(" ")}]${r.txn ? " unknown" : ""}`;
  }
}

export function describeOutput(o: Output): string {
  switch (o.type) {
    case "append":
      return `append ${describeRecord(o.record)}`;
    case "reply":
      return `reply ${o.req} ${o.reply.kind === "txn" ? `${o.reply.view.xid} ${o.reply.view.state}` : o.reply.kind === "branch" ? `branch ${o.reply.branch} created=${o.reply.created}` : o.reply.kind === "recovery" ? `recovery ${JSON.stringify(o.reply.report)}` : o.reply.kind === "error" ? `error ${o.reply.code}` : o.reply.kind}`;
    case "forgotten":
      return `forgotten ${o.branches.length}`;
    default:
      return `${o.type} ${o.branch.branchId}`;
  }
}
