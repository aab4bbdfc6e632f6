/**
 * The two-phase-commit protocol engine: pure and deterministic. It takes inputs (client
 * calls, reads, log entries that became durable, votes, phase-2 results, ticks) and returns
 * outputs (records to append, participant calls to make, replies to send). It never awaits,
 * reads a clock or draws a random number of its own: `nowMs` arrives with every input and
 * `random` is injected.
 *
 * Its shape follows etcd-io/raft: a `Replica` (replica.ts) every node applies the log to, and
 * while this node leads, a `Leader` (leader.ts) built by `becomeLeader` and dropped whole by
 * `stepDown`. This file only routes inputs; each concern has its module: client-begin.ts and
 * client-commit.ts (client calls), phase1.ts, phase2.ts (+ phase2-retry.ts), applied.ts,
 * recovery.ts (+ recovery-decision.ts), operator.ts, deadlines.ts, admin.ts (reads: inputs
 * too, answered in order with the writes, refused like them while not leading or catching up).
 *
 * Invariants it keeps (docs/architecture.md):
 * - G1: a participant is told to commit, or to roll back a branch it may have prepared, only
 *   after the `decide` entry is applied — i.e. durable in the log.
 * - G2/G7: a decision is a compare-and-set entry (the table keeps the first); every answer
 *   about an outcome is read from the applied table.
 * - G4: no commit decision → abort: on a no vote, on a deadline, on a client's abort.
 *   Nothing live is aborted by a leader change or a tick before its deadline.
 */
import {
  answerRead,
  factsOf,
  drainPending,
  oldestInDoubtBeganAtMs,
  inDoubtCount,
  inFlightCount,
  relist,
  viewOf,
  type ReadSource,
} from "./admin.js";
import { forgettable, leaderAppendFailed, leaderApplied } from "./applied.js";
import { invariant } from "./assert.js";
import { begin, enlist, reportPrepared } from "./client-begin.js";
import { abort, commitOrPrepare } from "./client-commit.js";
import { abandon, tick } from "./deadlines.js";
import type { Term, Xid } from "./ids.js";
import type { AdminFacts, EngineConfig, Input, Output, Proposal } from "./inputs.js";
import { Leader, type Io } from "./leader.js";
import { abdicate, catchUp } from "./leadership.js";
import { resolve } from "./operator.js";
import { onePhaseDone, voted } from "./phase1.js";
import { phase2Done, phase2Failed } from "./phase2.js";
import { recovered } from "./recovery.js";
import { Replica, xidsOf } from "./replica.js";
import { catchingUp, notLeader } from "./replies.js";
import type { Entry, TxnTable } from "./table.js";
import type { TxnView } from "./view.js";

export { branchVote, failedVote } from "./phase1.js";
export type {
  AdminFacts,
  BranchVote,
  CallError,
  EngineConfig,
  EngineErrorCode,
  FoundBranches,
  Idem,
  Input,
  ListCursor,
  ListQuery,
  Output,
  PrepareOrder,
  Principal,
  Proposal,
  ReadInput,
  RecoveryReport,
  Reply,
  ReqId,
  ResolveAction,
  XidCall,
} from "./inputs.js";

/** Inputs only a leader that has caught up acts on. */
type LeaderInput = Exclude<Input, { type: "applied" | "drain" }>;

export class Engine {
  private replica = new Replica();
  private leader: Leader | undefined;
  /** The term of the latest leadership: a new one must be later (it is a fencing token). */
  private lastTerm = 0;
  private draining = false;
  private readonly io: Io = { nowMs: 0, out: [] };

  constructor(
    private readonly cfg: EngineConfig,
    private readonly random: () => number,
  ) {}

  get table(): TxnTable {
    return this.replica.table;
  }

  /** Starts from a snapshot of the table (before replaying the entries after it). */
  loadSnapshot(data: Uint8Array): void {
    invariant(
      this.replica.appliedIndex === 0 && !this.leader,
      "snapshot loaded into a used engine",
    );
    this.replica = Replica.restore(data);
  }

  get isLeader(): boolean {
    return this.leader !== undefined;
  }

  /** Feeds one input; returns what to do, in order. */
  handle(input: Input, nowMs: number): Output[] {
    this.io.nowMs = Math.max(this.io.nowMs, nowMs);
    if (input.type === "applied") this.applied(input.entry, input.proposal);
    else if (input.type === "drain") this.draining = true;
    else this.step(input);
    return this.take();
  }

  /**
   * This node leads from `term` on. It serves nothing that depends on the table until the
   * table has applied the log up to `logLastIndex` (its last index when leadership began).
   */
  becomeLeader(term: Term, nowMs: number, logLastIndex = this.replica.appliedIndex): Output[] {
    invariant(this.leader === undefined, "becomeLeader while leading");
    invariant(term > this.lastTerm, `term ${term} is not after ${this.lastTerm}`);
    this.io.nowMs = Math.max(this.io.nowMs, nowMs);
    this.lastTerm = term;
    const l = new Leader(term, logLastIndex, this.cfg, this.random, this.replica, this.io);
    this.leader = l;
    if (this.replica.appliedIndex >= logLastIndex) catchUp(l);
    return this.take();
  }

  /** Leadership lost: the leader is dropped whole, after its waiting calls hear so. */
  stepDown(): Output[] {
    if (this.leader) abdicate(this.leader);
    this.leader = undefined;
    return this.take();
  }

  /**
   * The shell's own look at a transaction, on this node's table: no answer to a client (those
   * are `view` inputs, answered in order with the writes).
   */
  view(xid: Xid): TxnView | undefined {
    return viewOf(this.reads(), xid);
  }

  /**
   * The shell's own look at what an operator would see of a transaction (the participants
   * listing explains prepared branches with it): not an answer to a caller.
   */
  facts(xid: Xid): AdminFacts | undefined {
    return factsOf(this.reads(), xid);
  }

  inDoubt(): number {
    return inDoubtCount(this.reads().leader);
  }

  oldestInDoubtBeganAtMs(): number | undefined {
    return oldestInDoubtBeganAtMs(this.reads().leader);
  }

  inFlight(): number {
    return inFlightCount(this.reads());
  }

  drainPending(): number {
    return drainPending(this.reads().leader);
  }

  /** Idempotency keys held now (bounded by `idempotencyKeysMax`). */
  keysHeld(): number {
    return this.leader?.keys.size ?? 0;
  }

  private reads(): ReadSource {
    return { replica: this.replica, leader: this.leader?.caughtUp ? this.leader : undefined };
  }

  private take(): Output[] {
    const out = this.io.out;
    this.io.out = [];
    return out;
  }

  private applied(entry: Entry, proposal: Proposal | undefined): void {
    const l = this.leader;
    const serving = l?.caughtUp ? l : undefined;
    const forgotten = serving ? forgettable(serving, entry.record) : [];
    const result = this.replica.apply(entry);
    if (serving) {
      leaderApplied(serving, entry, result, forgotten, proposal);
      relist(serving, xidsOf(entry.record));
    } else if (l && this.replica.appliedIndex >= l.catchUpIndex) catchUp(l);
  }

  private step(input: LeaderInput): void {
    const l = this.leader;
    if (!l || !l.caughtUp) {
      if ("req" in input)
        this.io.out.push({ type: "reply", req: input.req, reply: l ? catchingUp() : notLeader() });
      return;
    }
    this.act(l, input);
    if ("xid" in input) relist(l, [input.xid]);
    else if (input.type === "append-failed") relist(l, xidsOf(input.record));
  }

  private act(l: Leader, input: LeaderInput): void {
    switch (input.type) {
      case "view":
      case "admin-facts":
      case "admin-list":
        return answerRead(l, input);
      case "begin":
        return begin(l, input, this.draining);
      case "enlist":
        return enlist(l, input);
      case "report-prepared":
        return reportPrepared(l, input);
      case "prepare":
      case "commit":
        return commitOrPrepare(l, { ...input, type: input.type });
      case "abort":
        return abort(l, input);
      case "append-failed":
        return leaderAppendFailed(l, input.record, input.proposal, input.error);
      case "voted":
        return voted(l, input.xid, input.n, input.vote);
      case "phase2-done":
        return phase2Done(l, input.xid, input.n, input.outcome);
      case "phase2-failed":
        return phase2Failed(l, input.xid, input.n, input.error);
      case "one-phase-done":
        return onePhaseDone(l, input.xid, input.outcome);
      case "recovered":
        return recovered(l, input);
      case "resolve":
        return resolve(l, input);
      case "abandon":
        return abandon(l);
      case "tick":
        return tick(l);
    }
  }
}
