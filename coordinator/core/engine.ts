/**
 * The two-phase-commit protocol engine: pure and deterministic. It takes inputs (client
 * calls, log entries that became durable, votes, phase-2 results, ticks) and returns outputs
 * (records to append, participant calls to make, replies to send). It never awaits, reads a
 * clock or draws a random number of its own: `nowMs` arrives with every input and `random`
 * is injected.
 *
 * Invariants it keeps (docs/architecture.md §3):
 * - G1: a participant is told to commit, or to roll back a branch it may have prepared, only
 *   after the `decide` entry is applied — i.e. durable in the log.
 * - G2/G7: a decision is a compare-and-set entry (the table keeps the first); every answer
 *   about an outcome is read from the applied table.
 * - G4: no commit decision → abort: on a no vote, on a deadline, on a client's abort.
 *   Nothing live is aborted by a leader change or a tick before its deadline.
 */
import type {
  OnePhaseOutcome,
  Phase2Outcome,
  ParticipantKind,
  Vote,
} from "../../participants/participant.js";
import { invariant } from "./assert.js";
import { backoffMs, type BackoffConfig } from "./backoff.js";
import {
  branchIdOf,
  parseBranchId,
  xidBeganAtMs,
  type BranchNo,
  type ClusterId,
  type Term,
  type Xid,
} from "./ids.js";
import { IdempotencyKeys, type Idem, type KeyLimits, type KeyUse } from "./idempotency.js";
import { mergePayloads } from "./payload.js";
import type {
  Ack,
  BranchSpec,
  Decision,
  DecisionCode,
  LogRecord,
  LoggedKey,
  Operator,
  TxnHeader,
} from "./records.js";
import {
  durableState,
  heuristicOf,
  isFinished,
  TxnTable,
  type DurableTxn,
  type Entry,
  type HistoryItem,
} from "./table.js";
import { isDecided, transition, type TxnState } from "./txn.js";
import { viewOfDurable, viewOfLive, type TxnView } from "./view.js";

export interface Principal {
  readonly id: string;
  readonly admin: boolean;
}

export type { Idem } from "./idempotency.js";

export type ReqId = number;

export type EngineErrorCode =
  | "transaction-not-found"
  | "forbidden"
  | "invalid-state"
  | "transaction-committed"
  | "idempotency-key-reused"
  | "limit-exceeded"
  | "payload-too-large"
  | "branch-not-found"
  | "too-many-transactions"
  | "outcome-unknown"
  | "not-leader"
  | "unavailable";

export type Reply =
  | { readonly kind: "txn"; readonly view: TxnView; readonly created?: boolean }
  | {
      readonly kind: "branch";
      readonly branch: BranchNo;
      readonly branchId: string;
      readonly created: boolean;
    }
  | {
      readonly kind: "error";
      readonly code: EngineErrorCode;
      readonly message: string;
      readonly details?: Record<string, unknown>;
    }
  | { readonly kind: "recovery"; readonly report: RecoveryReport };

/** What one recovery scan found and did, by branch. */
export interface RecoveryReport {
  readonly found: number;
  readonly committed: number;
  readonly rolledBack: number;
  /** Living, being driven, or changed while the scan ran: left for later. */
  readonly left: number;
}

/** One participant's answer to `recover()`: the prepared branches it holds. */
export interface FoundBranches {
  readonly participant: string;
  readonly kind: ParticipantKind;
  readonly branchIds: readonly string[];
}

/** The client calls that may wait for what their transaction does next. */
type WaitType = "prepare" | "commit" | "abort";

export type ResolveAction = "commit" | "abort" | "settle" | "forget";

/** A client call about one transaction. */
export interface XidCall {
  readonly req: ReqId;
  readonly principal: Principal;
  readonly xid: Xid;
}

export type Input =
  | {
      readonly type: "begin";
      readonly req: ReqId;
      readonly principal: Principal;
      readonly xid: Xid;
      readonly timeoutMs: number;
      readonly labels: Readonly<Record<string, string>>;
      readonly idem?: Idem;
    }
  | {
      readonly type: "enlist";
      readonly req: ReqId;
      readonly principal: Principal;
      readonly xid: Xid;
      readonly participant: string;
      readonly kind: ParticipantKind;
      readonly payload: unknown;
      /** Size of the payload's work, counted against payloadBytesPerTxnMax. */
      readonly payloadBytes: number;
      readonly idem?: Idem;
    }
  | {
      readonly type: "report-prepared";
      readonly req: ReqId;
      readonly principal: Principal;
      readonly xid: Xid;
      readonly n: number;
      readonly idem?: Idem;
    }
  | (XidCall & { readonly type: WaitType; readonly idem?: Idem })
  | { readonly type: "applied"; readonly entry: Entry }
  | { readonly type: "append-failed"; readonly record: LogRecord; readonly error: string }
  | { readonly type: "voted"; readonly xid: Xid; readonly n: BranchNo; readonly vote: Vote }
  | {
      readonly type: "phase2-done";
      readonly xid: Xid;
      readonly n: BranchNo;
      readonly outcome: Phase2Outcome;
    }
  | {
      readonly type: "phase2-failed";
      readonly xid: Xid;
      readonly n: BranchNo;
      readonly error: string;
    }
  | {
      /** Result of a one-phase commit, or of checking its marker; `unknown` retries the check. */
      readonly type: "one-phase-done";
      readonly xid: Xid;
      readonly outcome: OnePhaseOutcome | { readonly outcome: "unknown"; readonly detail: string };
    }
  | {
      /** A recovery scan's lists, taken after the table had applied `startedAtIndex`. */
      readonly type: "recovered";
      readonly req: ReqId;
      readonly startedAtIndex: number;
      readonly found: readonly FoundBranches[];
    }
  | (XidCall & {
      /** An operator's heuristic resolution (admin only). */
      readonly type: "resolve";
      readonly action: ResolveAction;
      readonly reason: string;
      readonly branch?: number;
      /** Branch ids the participants list as prepared now (checked before a forced commit). */
      readonly prepared: ReadonlySet<string>;
    })
  /** Shutting down: begin no new transaction. */
  | { readonly type: "drain" }
  /** Shutting down for good: abort (durably) what only this node's memory holds. */
  | { readonly type: "abandon" }
  | { readonly type: "tick" };

export type Output =
  | { readonly type: "append"; readonly record: LogRecord }
  | {
      readonly type: "prepare";
      readonly xid: Xid;
      readonly branch: BranchSpec;
      readonly deadlineMs: number;
      /** Whose transaction: a participant may run the work with that principal's rights. */
      readonly principal: string;
    }
  | {
      readonly type: "commit" | "rollback";
      readonly xid: Xid;
      readonly branch: BranchSpec;
      readonly term: Term;
      readonly decidedAtMs: number;
      /** The branch's yes vote's evidence, from the decision. */
      readonly evidence?: string;
    }
  | {
      readonly type: "commit-one-phase" | "check-one-phase";
      readonly xid: Xid;
      readonly branch: BranchSpec;
      readonly deadlineMs: number;
      readonly principal: string;
    }
  | { readonly type: "forgotten"; readonly branches: readonly BranchSpec[] }
  | { readonly type: "reply"; readonly req: ReqId; readonly reply: Reply };

/** Decided but unfinished, or prepared and waiting for its decision. */
function isInDoubt(state: TxnState): boolean {
  return state === "committing" || state === "aborting" || state === "prepared";
}

export interface AdminFacts {
  readonly view: TxnView;
  readonly principal: string;
  readonly beganAtMs: number;
  readonly inDoubt: boolean;
  readonly history: readonly HistoryItem[];
  /** Branch number → phase-2 attempts that failed so far. */
  readonly attempts: ReadonlyMap<number, number>;
  /** Branch number → the error of its last failed phase-2 attempt. */
  readonly lastErrors: ReadonlyMap<number, string>;
}

export interface EngineConfig extends KeyLimits {
  readonly clusterId: ClusterId;
  readonly inFlightMax: number;
  readonly branchesPerTxnMax: number;
  /** Bytes of all branch work of one transaction (it is all kept in the `preparing` record). */
  readonly payloadBytesPerTxnMax: number;
  /** A limit the merged work of one branch breaks (statements, ops or messages per branch). */
  readonly branchWorkOverLimit: (payload: unknown) => { limit: string; max: number } | undefined;
  readonly phase2Backoff: BackoffConfig;
  /** How long a finished transaction stays visible before it is forgotten. */
  readonly retentionMs: number;
  readonly forgetBatchMax: number;
  /** Commit a single PostgreSQL or Redis branch in one phase. */
  readonly onePhase: boolean;
  /** Client calls waiting on one transaction at once; more are refused (`unavailable`). */
  readonly callsWaitingPerTxnMax: number;
  /** Operator resolutions waiting for their record at once; more are refused (`unavailable`). */
  readonly operatorCallsWaitingMax: number;
}

interface LiveBranch {
  spec: BranchSpec;
  readonly servicePrepared: boolean;
}

/** A client call waiting for an answer; its key goes into the next record proposed for it. */
interface Waiter {
  readonly req: ReqId;
  readonly type: WaitType;
  readonly key?: LoggedKey;
  keyProposed?: boolean;
}

interface Phase2Track {
  inFlight: boolean;
  attempt: number;
  dueMs: number;
  lastError?: string;
}

/** What the leader drives for one transaction until it is finished. */
interface Live {
  readonly header: TxnHeader;
  state: TxnState;
  readonly branches: LiveBranch[];
  readonly votes: Map<number, Vote>;
  /** Bytes of branch work enlisted so far. */
  payloadBytes: number;
  /** Branches with a prepare call out: a retried commit must not send a second one. */
  readonly preparesOut: Set<number>;
  /** `preparing` was proposed: the log may hold these branches, so they can no longer change. */
  branchesFixed: boolean;
  /** An abort this leader proposed for it, even if the log reported it failed. */
  abortTried?: { readonly code: DecisionCode; readonly reason: string };
  /** Set by the prepare endpoint: stop at `prepared` and wait for commit. */
  prepareOnly: boolean;
  /** An append for this transaction is on its way to the log. */
  proposing?: "preparing" | "decide";
  readonly waiting: Waiter[];
  readonly phase2: Map<number, Phase2Track>;
  /** Phase 2 has failed at least once: commit answers `committing` rather than wait. */
  phase2Stalled: boolean;
  onePhaseCheckDueMs?: number;
}

const kafkaLast = (kind: ParticipantKind): number => (kind === "kafka" ? 1 : 0);

/** The yes votes' evidence by branch number, for the decide record (records.ts). */
function evidenceOf(votes: ReadonlyMap<number, Vote>): { evidence?: Record<string, string> } {
  const evidence: Record<string, string> = {};
  for (const [n, vote] of votes) {
    if (vote.vote === "yes" && vote.evidence !== undefined) evidence[n] = vote.evidence;
  }
  return Object.keys(evidence).length > 0 ? { evidence } : {};
}

export class Engine {
  private tableState = new TxnTable();
  private readonly live = new Map<Xid, Live>();
  private readonly keys: IdempotencyKeys;
  private readonly undecided = new Set<Xid>();
  private readonly finishedAt: { xid: Xid; atMs: number }[] = [];
  private pendingAcks: Ack[] = [];
  /** Transactions with a `recover` record on its way to the log. */
  private readonly recovering = new Set<Xid>();
  /** Index of the last `forget` applied: a scan older than it may list what it forgot. */
  private lastForgetIndex = 0;
  /** Operators waiting for the entry their resolution wrote; a forget keeps the last view. */
  private readonly operatorWaits = new Map<Xid, { req: ReqId; last?: TxnView }[]>();
  private draining = false;
  private acksInFlight = false;
  private forgetInFlight = false;
  private leader = false;
  private nowMs = 0;
  private out: Output[] = [];

  constructor(
    private readonly cfg: EngineConfig,
    private readonly random: () => number,
  ) {
    this.keys = new IdempotencyKeys(cfg);
  }

  get table(): TxnTable {
    return this.tableState;
  }

  /** Starts from a snapshot of the table (before replaying the entries after it). */
  loadSnapshot(data: Uint8Array): void {
    invariant(
      this.tableState.appliedIndex === 0 && !this.leader,
      "snapshot loaded into a used engine",
    );
    this.tableState = TxnTable.restore(data);
    for (const t of this.tableState.all()) {
      if (!t.decision) this.undecided.add(t.header.xid);
      this.keys.rememberLogged(t.header.xid, t.keys ?? [], this.nowMs);
    }
  }

  get isLeader(): boolean {
    return this.leader;
  }

  /** Feeds one input; returns what to do, in order. */
  handle(input: Input, nowMs: number): Output[] {
    this.nowMs = Math.max(this.nowMs, nowMs);
    switch (input.type) {
      case "begin":
        this.begin(input);
        break;
      case "enlist":
        this.enlist(input);
        break;
      case "report-prepared":
        this.reportPrepared(input);
        break;
      case "prepare":
      case "commit":
        this.commitOrPrepare(input, input.type);
        break;
      case "abort":
        this.abort(input);
        break;
      case "applied":
        this.applied(input.entry);
        break;
      case "append-failed":
        this.appendFailed(input.record, input.error);
        break;
      case "voted":
        this.voted(input.xid, input.n, input.vote);
        break;
      case "phase2-done":
        this.phase2Done(input.xid, input.n, input.outcome);
        break;
      case "phase2-failed":
        this.phase2Failed(input.xid, input.n, input.error);
        break;
      case "one-phase-done":
        this.onePhaseDone(input.xid, input.outcome);
        break;
      case "recovered":
        this.recovered(input);
        break;
      case "resolve":
        this.resolve(input);
        break;
      case "drain":
        this.draining = true;
        break;
      case "abandon":
        this.abandon();
        break;
      case "tick":
        this.tick();
        break;
    }
    const out = this.out;
    this.out = [];
    return out;
  }

  /** This node now leads: drive every decided, unfinished transaction; settle one-phase ones. */
  becomeLeader(nowMs: number): Output[] {
    this.nowMs = Math.max(this.nowMs, nowMs);
    this.leader = true;
    for (const t of this.table.all()) {
      const state = durableState(t);
      if (state === "committing" || state === "aborting") this.startPhase2(this.revive(t));
      else if (state === "preparing" && t.onePhase) {
        const live = this.revive(t);
        live.onePhaseCheckDueMs = this.nowMs;
      } else if (state === "committed" || state === "aborted") {
        // Finished before this node led: its retention counts from now.
        this.finishedAt.push({ xid: t.header.xid, atMs: this.nowMs });
      }
    }
    this.tick();
    const out = this.out;
    this.out = [];
    return out;
  }

  /**
   * Leadership lost: everything volatile is dropped. Every waiting call, client's or
   * operator's, hears `outcome-unknown`: what it asked for may or may not reach the log.
   */
  stepDown(): Output[] {
    this.leader = false;
    const unknown = errorReply("outcome-unknown", "leadership changed before an answer");
    for (const live of this.live.values()) {
      for (const w of live.waiting) this.reply(w.req, unknown);
    }
    for (const waits of this.operatorWaits.values()) {
      for (const w of waits) this.reply(w.req, unknown);
    }
    this.operatorWaits.clear();
    this.recovering.clear();
    this.live.clear();
    this.keys.dropUnlogged();
    this.pendingAcks = [];
    this.acksInFlight = false;
    this.forgetInFlight = false;
    this.finishedAt.length = 0; // rebuilt from the table by becomeLeader
    const out = this.out;
    this.out = [];
    return out;
  }

  /** The current view of a transaction, from the applied table and the leader's volatile state. */
  view(xid: Xid): TxnView | undefined {
    const live = this.live.get(xid);
    const t = this.table.get(xid);
    if (t)
      return viewOfDurable(t, live?.votes, live?.state === "prepared" ? "prepared" : undefined);
    if (live) return this.liveView(live);
    return undefined;
  }

  principalOf(xid: Xid): string | undefined {
    return this.live.get(xid)?.header.principal ?? this.table.get(xid)?.header.principal;
  }

  /** What an operator sees of one transaction: its view, owner, history and retry counts. */
  adminFacts(xid: Xid): AdminFacts | undefined {
    const view = this.view(xid);
    const live = this.live.get(xid);
    const t = this.table.get(xid);
    const header = live?.header ?? t?.header;
    if (!view || !header) return undefined;
    const attempts = new Map<number, number>();
    const lastErrors = new Map<number, string>();
    for (const [n, track] of live?.phase2 ?? []) {
      attempts.set(n, track.attempt);
      if (track.lastError !== undefined) lastErrors.set(n, track.lastError);
    }
    return {
      view,
      principal: header.principal,
      beganAtMs: header.beganAtMs,
      inDoubt: isInDoubt(view.state),
      history: t?.history ?? [],
      attempts,
      lastErrors,
    };
  }

  /** Every transaction this node knows: in doubt first, then newest first. */
  adminList(): AdminFacts[] {
    const xids = new Set<Xid>([
      ...this.live.keys(),
      ...[...this.table.all()].map((t) => t.header.xid),
    ]);
    const all: AdminFacts[] = [];
    for (const xid of xids) {
      const f = this.adminFacts(xid);
      if (f) all.push(f);
    }
    return all.sort(
      (a, b) =>
        Number(b.inDoubt) - Number(a.inDoubt) ||
        b.beganAtMs - a.beganAtMs ||
        (a.view.xid < b.view.xid ? -1 : 1),
    );
  }

  /** Decided transactions with branches not yet acknowledged (the operator's "in doubt"). */
  inDoubt(): number {
    let n = 0;
    for (const live of this.live.values()) if (isInDoubt(live.state)) n += 1;
    return n;
  }

  inFlight(): number {
    return this.live.size + this.undecided.size;
  }

  /** Idempotency keys held now (bounded by `idempotencyKeysMax`). */
  keysHeld(): number {
    return this.keys.size;
  }

  /**
   * Transactions a shutdown should wait for: everything this node drives, except those
   * prepared and waiting for their client — the log holds them, the next start resumes them.
   */
  drainPending(): number {
    let n = 0;
    for (const live of this.live.values()) if (live.state !== "prepared") n += 1;
    return n;
  }

  // ---- client calls -------------------------------------------------------------------------

  private begin(input: Extract<Input, { type: "begin" }>): void {
    if (!this.leader) return this.reply(input.req, notLeader());
    if (this.draining) {
      return this.reply(input.req, errorReply("unavailable", "the node is shutting down"));
    }
    if (this.refusedKey(input)) return;
    const prior = this.priorUse(input);
    const view = prior && this.view(prior.xid);
    if (view) return this.reply(input.req, { kind: "txn", view, created: false });
    if (this.inFlight() >= this.cfg.inFlightMax) {
      return this.reply(
        input.req,
        errorReply("too-many-transactions", `at most ${this.cfg.inFlightMax} in flight`, {
          inFlightMax: this.cfg.inFlightMax,
        }),
      );
    }
    invariant(!this.live.has(input.xid) && !this.table.get(input.xid), "xid reused");
    const live: Live = {
      header: {
        xid: input.xid,
        principal: input.principal.id,
        beganAtMs: this.nowMs,
        deadlineMs: this.nowMs + input.timeoutMs,
        labels: input.labels,
      },
      state: "active",
      branches: [],
      votes: new Map(),
      payloadBytes: 0,
      preparesOut: new Set(),
      branchesFixed: false,
      prepareOnly: false,
      waiting: [],
      phase2: new Map(),
      phase2Stalled: false,
    };
    this.live.set(input.xid, live);
    this.holdKey(input, { xid: input.xid });
    this.reply(input.req, { kind: "txn", view: this.liveView(live), created: true });
  }

  private enlist(input: Extract<Input, { type: "enlist" }>): void {
    const live = this.driven(input);
    if (!live || this.refusedKey(input)) return;
    // A repeat answers the branch its first call answered, even once the branches are fixed.
    const first = this.priorUse(input)?.branch;
    const keyed = first && live.branches[first.n - 1];
    if (first && keyed) return this.replyBranch(input.req, keyed.spec, first.created);
    // Once `preparing` is proposed the branches are fixed: later work would never be decided.
    if (live.state !== "active" || live.proposing !== undefined || live.branchesFixed) {
      const state = live.branchesFixed ? "preparing" : live.state;
      return this.reply(input.req, invalidState(live.header.xid, state, "enlist"));
    }
    const existing = live.branches.find((b) => b.spec.participant === input.participant);
    const servicePrepared = isServicePrepared(input.payload);
    if (live.payloadBytes + input.payloadBytes > this.cfg.payloadBytesPerTxnMax) {
      const max = this.cfg.payloadBytesPerTxnMax;
      return this.reply(
        input.req,
        errorReply("payload-too-large", `over payloadBytesPerTransactionMax (${max})`, {
          limit: "payloadBytesPerTransactionMax",
          max,
        }),
      );
    }
    if (existing) {
      if (existing.servicePrepared || servicePrepared) {
        return this.reply(
          input.req,
          invalidState(
            live.header.xid,
            live.state,
            "a service-prepared branch cannot share its participant with other work",
          ),
        );
      }
      const merged = mergePayloads(existing.spec.payload, input.payload);
      const over = merged.ok ? this.cfg.branchWorkOverLimit(merged.payload) : undefined;
      if (over) return this.reply(input.req, overLimit(over.limit, over.max));
      if (!merged.ok)
        return this.reply(input.req, invalidState(live.header.xid, "active", merged.why));
      existing.spec = { ...existing.spec, payload: merged.payload };
      live.payloadBytes += input.payloadBytes;
      this.holdKey(input, { xid: input.xid, branch: { n: existing.spec.n, created: false } });
      return this.replyBranch(input.req, existing.spec, false);
    }
    if (live.branches.length >= this.cfg.branchesPerTxnMax) {
      return this.reply(
        input.req,
        overLimit("branchesPerTransactionMax", this.cfg.branchesPerTxnMax),
      );
    }
    const n = (live.branches.length + 1) as BranchNo;
    const spec: BranchSpec = {
      n,
      branchId: branchIdOf(this.cfg.clusterId, live.header.xid, n),
      participant: input.participant,
      kind: input.kind,
      payload: input.payload,
    };
    live.branches.push({ spec, servicePrepared });
    live.payloadBytes += input.payloadBytes;
    this.holdKey(input, { xid: input.xid, branch: { n, created: true } });
    this.replyBranch(input.req, spec, true);
  }

  private reportPrepared(input: Extract<Input, { type: "report-prepared" }>): void {
    const live = this.driven(input);
    if (!live || this.refusedKey(input)) return;
    const b = live.branches[input.n - 1];
    const ids = { xid: input.xid, branch: input.n };
    if (!b)
      return this.reply(input.req, errorReply("branch-not-found", `no branch ${input.n}`, ids));
    if (!b.servicePrepared) {
      return this.reply(
        input.req,
        errorReply("invalid-state", `branch ${input.n} is not a service-prepared branch`, ids),
      );
    }
    this.holdKey(input, { xid: input.xid });
    this.replyBranch(input.req, b.spec, false);
  }

  private commitOrPrepare(input: KeyedCall, type: "prepare" | "commit"): void {
    if (!this.leader) return this.reply(input.req, notLeader());
    if (this.refusedKey(input)) return;
    const live = this.live.get(input.xid) ?? this.reviveUndecided(input.xid);
    if (!live) {
      const t = this.table.get(input.xid);
      if (t) {
        if (!this.mayDrive(input.principal, t.header))
          return this.reply(input.req, forbidden(input.xid));
        return this.reply(input.req, { kind: "txn", view: viewOfDurable(t) });
      }
      // Presumed abort: a transaction this leader never saw reach `preparing` did not commit —
      // unless it is old enough to have been finished and forgotten; then nobody can tell.
      const beganAtMs = xidBeganAtMs(input.xid);
      if (beganAtMs !== undefined && this.nowMs - beganAtMs >= this.cfg.retentionMs) {
        return this.reply(
          input.req,
          errorReply(
            "transaction-not-found",
            `no transaction ${input.xid}: unknown, or forgotten after the retention time`,
            { xid: input.xid },
          ),
        );
      }
      return this.reply(input.req, { kind: "txn", view: unknownAborted(input.xid) });
    }
    if (!this.mayDrive(input.principal, live.header))
      return this.reply(input.req, forbidden(input.xid));
    const prepareOnly = type === "prepare";
    switch (live.state) {
      case "active":
        if (!this.wait(live, input, type)) return;
        // A prepare call never turns a commit that is already waiting into prepare-only.
        live.prepareOnly = prepareOnly && !live.waiting.some((w) => w.type === "commit");
        return this.proposePreparing(live);
      case "preparing":
        if (!this.wait(live, input, type)) return;
        if (!prepareOnly) live.prepareOnly = false;
        // Resume phase 1 (after a restart, or a decision the log did not take); a one-phase
        // branch is settled by its own outcome instead.
        if (live.proposing === undefined && !this.onePhasePending(live)) {
          this.sendPrepares(live);
          this.decideFromVotes(live);
        }
        return;
      case "prepared":
        if (prepareOnly) return this.reply(input.req, { kind: "txn", view: this.liveView(live) });
        if (!this.wait(live, input, type)) return;
        return this.proposeDecision(live, "commit", "all-voted-yes", "all branches voted yes");
      case "committing":
      case "aborting":
        if (prepareOnly && live.state === "committing") {
          return this.reply(input.req, { kind: "txn", view: this.liveView(live) });
        }
        if (live.phase2Stalled || live.state === "aborting") {
          return this.reply(input.req, { kind: "txn", view: this.liveView(live) });
        }
        this.wait(live, input, type);
        return;
      case "committed":
      case "aborted":
        return this.reply(input.req, { kind: "txn", view: this.liveView(live) });
    }
  }

  private abort(input: KeyedCall): void {
    if (!this.leader) return this.reply(input.req, notLeader());
    if (this.refusedKey(input)) return;
    const live = this.live.get(input.xid) ?? this.reviveUndecided(input.xid);
    if (!live) {
      const t = this.table.get(input.xid);
      if (!t) return this.reply(input.req, notFound(input.xid));
      if (!this.mayDrive(input.principal, t.header))
        return this.reply(input.req, forbidden(input.xid));
      if (t.decision?.decision === "commit")
        return this.reply(input.req, alreadyCommitted(input.xid));
      return this.reply(input.req, { kind: "txn", view: viewOfDurable(t) });
    }
    if (!this.mayDrive(input.principal, live.header))
      return this.reply(input.req, forbidden(input.xid));
    if (live.state === "committing" || live.state === "committed") {
      return this.reply(input.req, alreadyCommitted(input.xid));
    }
    if (live.state === "aborting" || live.state === "aborted") {
      return this.reply(input.req, { kind: "txn", view: this.liveView(live) });
    }
    if (!this.wait(live, input, "abort")) return;
    // A one-phase commit may already have committed: only its outcome decides.
    if (live.proposing === "decide" || this.onePhasePending(live)) return;
    // The log names who aborted: the owner, or an admin acting on another's transaction.
    const by = `${input.principal.admin ? "admin" : "client"} ${input.principal.id}`;
    this.proposeDecision(live, "abort", "client-abort", `aborted by ${by}`);
  }

  // ---- the log ----------------------------------------------------------------------------

  private applied(entry: Entry): void {
    const r = entry.record;
    // Markers may be collected only once the forget is durable: read the branches first.
    const forgotten =
      r.type === "forget" && this.leader
        ? r.xids.flatMap((xid) => {
            const t = this.table.get(xid);
            return t && isFinished(durableState(t)) ? t.branches : [];
          })
        : [];
    const result = this.table.apply(entry);
    if (r.type === "preparing" || r.type === "decide") {
      const xid = r.type === "preparing" ? r.txn.xid : r.xid;
      const keys = (r.keys ?? []).map((k) => ({ ...k, atMs: r.atMs }));
      this.keys.rememberLogged(xid, keys, this.nowMs);
    }
    switch (r.type) {
      case "preparing": {
        // A repeated `preparing` may land after the decision: it is not undecided again.
        if (!this.table.get(r.txn.xid)?.decision) this.undecided.add(r.txn.xid);
        const live = this.live.get(r.txn.xid);
        // Also when its append was reported failed but landed: the log now says preparing.
        if (!this.leader || !live || live.state !== "active" || live.proposing === "decide") return;
        live.proposing = undefined;
        live.state = transition(live.state, "preparing-written");
        if (r.onePhase && live.abortTried) {
          // An abort whose append was reported failed may have landed anyway, and a one-phase
          // commit is itself the decision: abort again rather than race it.
          const { code, reason } = live.abortTried;
          this.proposeDecision(live, "abort", code, reason);
        } else if (r.onePhase) {
          const b = only(live.branches);
          this.out.push({
            type: "commit-one-phase",
            xid: r.txn.xid,
            branch: b.spec,
            deadlineMs: live.header.deadlineMs,
            principal: live.header.principal,
          });
        } else {
          this.sendPrepares(live);
          this.decideFromVotes(live); // a transaction without branches has all its votes
        }
        return;
      }
      case "decide": {
        this.undecided.delete(r.xid);
        const t = this.table.get(r.xid);
        invariant(t?.decision !== undefined, `decide of ${r.xid} left no decision`);
        if (!this.leader) return;
        const live = this.live.get(r.xid) ?? this.revive(t);
        live.proposing = undefined;
        const won = t.decision.decision;
        if (!isDecided(live.state)) {
          live.state = transition(
            live.state,
            won === "commit" ? "commit-decided" : "abort-decided",
          );
        }
        invariant(
          live.state === (won === "commit" ? "committing" : "aborting") ||
            live.state === durableState(t),
          `live state ${live.state} disagrees with decision ${won} of ${r.xid}`,
        );
        if (result.won === false) {
          // The other side won the compare-and-set: answer with what holds.
          this.answerWaiting(live, t);
        }
        this.startPhase2(live);
        this.answerOperators([r.xid]);
        return;
      }
      case "acks":
        if (!r.operator) this.acksInFlight = false;
        for (const a of r.acks) {
          // A branch settled by hand is retried no more.
          this.live.get(a.xid)?.phase2.delete(a.n);
          this.maybeFinished(a.xid);
        }
        this.answerOperators(r.acks.map((a) => a.xid));
        this.flushAcks();
        return;
      case "forget":
        this.lastForgetIndex = entry.index;
        if (!r.operator) this.forgetInFlight = false;
        if (forgotten.length > 0) this.out.push({ type: "forgotten", branches: forgotten });
        this.answerOperators(r.xids);
        return;
      case "recover": {
        this.recovering.delete(r.xid);
        const t = this.table.get(r.xid);
        if (!this.leader || !t?.decision) return;
        const live = this.revive(t);
        live.state = durableState(t);
        this.startPhase2(live);
        return;
      }
    }
  }

  private appendFailed(record: LogRecord, error: string): void {
    const xids =
      record.type === "preparing" ? [record.txn.xid] : record.type === "decide" ? [record.xid] : [];
    if (record.type !== "preparing" && record.type !== "recover" && record.operator) {
      // An operator's entry is not retried here: the operator hears it and may repeat.
      const touched =
        record.type === "decide"
          ? [record.xid]
          : record.type === "acks"
            ? record.acks.map((a) => a.xid)
            : record.xids;
      this.failOperators(touched, error);
    } else if (record.type === "acks") {
      this.acksInFlight = false;
      this.pendingAcks = [...record.acks, ...this.pendingAcks];
    } else if (record.type === "forget") {
      this.forgetInFlight = false;
      // Forget them on a later tick; if the entry landed anyway they are simply gone.
      this.finishedAt.unshift(...record.xids.map((xid) => ({ xid, atMs: record.atMs })));
    } else if (record.type === "recover") {
      this.recovering.delete(record.xid); // the next scan finds the branches again
    }
    for (const xid of xids) {
      const live = this.live.get(xid);
      // Only the failure of the entry in flight matters (a `preparing` may fail after an
      // abort was proposed: the abort is still on its way).
      if (!live || live.proposing !== record.type) continue;
      live.proposing = undefined;
      // A one-phase outcome lives only in memory until its decision is durable: ask again.
      if (record.type === "decide" && this.onePhasePending(live))
        live.onePhaseCheckDueMs = this.nowMs;
      for (const w of live.waiting.splice(0)) {
        this.reply(
          w.req,
          errorReply("outcome-unknown", `the log did not take the entry: ${error}`),
        );
      }
    }
  }

  private proposePreparing(live: Live): void {
    if (live.proposing) return;
    live.proposing = "preparing";
    live.branchesFixed = true;
    const onePhase =
      this.cfg.onePhase &&
      !live.prepareOnly &&
      live.branches.length === 1 &&
      live.branches[0]?.spec.kind !== "kafka" &&
      !live.branches[0]?.servicePrepared;
    this.out.push({
      type: "append",
      record: {
        type: "preparing",
        v: 1,
        txn: live.header,
        branches: live.branches.map((b) => b.spec),
        onePhase,
        ...(live.prepareOnly ? { prepareOnly: true } : {}),
        ...this.keysToLog(live),
        atMs: this.nowMs,
      },
    });
  }

  private proposeDecision(
    live: Live,
    decision: Decision,
    code: DecisionCode,
    reason: string,
    acks?: Ack[],
    branch?: BranchNo,
    operator?: Operator,
  ): void {
    if (live.proposing === "decide") return;
    if (decision === "commit" && acks === undefined && this.nowMs > live.header.deadlineMs) {
      // Past the deadline only an abort may be decided, whether or not a tick saw it first.
      return this.proposeDecision(live, "abort", "deadline-passed", "deadline passed");
    }
    live.proposing = "decide";
    if (decision === "abort") live.abortTried = { code, reason };
    const known = this.table.get(live.header.xid) !== undefined;
    this.out.push({
      type: "append",
      record: {
        type: "decide",
        v: 1,
        xid: live.header.xid,
        decision,
        code,
        reason,
        ...(branch === undefined ? {} : { branch }),
        ...(known ? {} : { txn: live.header, branches: live.branches.map((b) => b.spec) }),
        ...(acks ? { acks } : {}),
        ...(operator ? { operator } : {}),
        ...(decision === "commit" ? evidenceOf(live.votes) : {}),
        ...this.keysToLog(live),
        atMs: this.nowMs,
      },
    });
  }

  /** Keys of waiting calls that no record carries yet, once each: the next record does. */
  private keysToLog(live: Live): { keys?: LoggedKey[] } {
    const keys = new Map<string, LoggedKey>();
    for (const w of live.waiting) {
      if (!w.key || w.keyProposed) continue;
      w.keyProposed = true;
      const held = this.keys.find(w.key.principal, w.key, this.nowMs);
      if (!held?.logged) keys.set(`${w.key.principal}\u0000${w.key.key}`, w.key);
    }
    return keys.size > 0 ? { keys: [...keys.values()] } : {};
  }

  // ---- phase 1 ----------------------------------------------------------------------------

  /**
   * Prepares one branch at a time, in participant-name order. Two transactions that touch the
   * same rows in two databases then lock them in the same order: preparing in parallel, each
   * could hold a row the other needs in a different database — a deadlock no database can
   * see, broken only by the deadline. The cost is one prepare's latency per extra branch.
   */
  private sendPrepares(live: Live): void {
    if (live.preparesOut.size > 0) return;
    const next = [...live.branches]
      .sort((a, b) => (a.spec.participant < b.spec.participant ? -1 : 1))
      .find((b) => live.votes.get(b.spec.n)?.vote !== "yes");
    if (!next || live.votes.has(next.spec.n)) return;
    live.preparesOut.add(next.spec.n);
    this.out.push({
      type: "prepare",
      xid: live.header.xid,
      branch: next.spec,
      deadlineMs: live.header.deadlineMs,
      principal: live.header.principal,
    });
  }

  private voted(xid: Xid, n: BranchNo, vote: Vote): void {
    const live = this.live.get(xid);
    live?.preparesOut.delete(n);
    if (!live || live.state !== "preparing") return;
    live.votes.set(n, vote);
    if (vote.vote === "yes") this.sendPrepares(live);
    this.decideFromVotes(live);
  }

  /** Aborts on a no vote; once every branch voted yes, commits or (prepare only) stops. */
  private decideFromVotes(live: Live): void {
    if (live.proposing === "decide") return;
    for (const [n, vote] of live.votes) {
      if (vote.vote === "no") {
        return this.proposeDecision(
          live,
          "abort",
          vote.reason === "participant-error" ? "prepare-failed" : "vote-no",
          `branch ${n} voted no: ${vote.reason}: ${vote.detail}`,
          undefined,
          n as BranchNo,
        );
      }
    }
    if (live.votes.size < live.branches.length) return;
    if (live.prepareOnly) {
      live.state = transition(live.state, "all-voted-yes");
      for (const w of live.waiting.splice(0)) {
        this.reply(w.req, { kind: "txn", view: this.liveView(live) });
      }
      return;
    }
    const code = live.branches.length === 0 ? "no-branches" : "all-voted-yes";
    this.proposeDecision(live, "commit", code, "all branches voted yes");
  }

  private onePhaseDone(
    xid: Xid,
    outcome: Extract<Input, { type: "one-phase-done" }>["outcome"],
  ): void {
    const live = this.live.get(xid);
    if (!live || live.state !== "preparing") return;
    const b = only(live.branches);
    const ack: Ack = { xid, n: b.spec.n, outcome: "done" };
    switch (outcome.outcome) {
      case "committed":
        return this.proposeDecision(live, "commit", "one-phase", "committed in one phase", [ack]);
      case "aborted":
        return this.proposeDecision(
          live,
          "abort",
          "vote-no",
          `one-phase commit failed: ${outcome.reason}: ${outcome.detail}`,
          [ack],
          b.spec.n,
        );
      case "unknown":
        live.onePhaseCheckDueMs = this.nowMs + backoffMs(this.cfg.phase2Backoff, 1, this.random);
        return;
    }
  }

  // ---- phase 2 ----------------------------------------------------------------------------

  private startPhase2(live: Live): void {
    const t = this.table.get(live.header.xid);
    invariant(t?.decision !== undefined, `phase 2 of ${live.header.xid} before its decision`);
    for (const b of t.branches) {
      if (t.acks.has(b.n) || live.phase2.has(b.n)) continue;
      live.phase2.set(b.n, { inFlight: false, attempt: 0, dueMs: this.nowMs });
    }
    this.maybeFinished(live.header.xid);
    this.sendDuePhase2(live, t);
  }

  private sendDuePhase2(live: Live, t: DurableTxn): void {
    invariant(t.decision !== undefined, "phase 2 without a decision");
    const commit = t.decision.decision === "commit";
    // Commit databases first, Kafka after they acknowledge: an event is never visible
    // before the rows it announces.
    const dbPending = t.branches.some(
      (b) => b.kind !== "kafka" && !t.acks.has(b.n) && !this.isDone(live, b.n),
    );
    for (const b of [...t.branches].sort((x, y) => kafkaLast(x.kind) - kafkaLast(y.kind))) {
      const track = live.phase2.get(b.n);
      if (!track || track.inFlight || track.dueMs > this.nowMs) continue;
      if (commit && b.kind === "kafka" && dbPending) continue;
      track.inFlight = true;
      this.out.push({
        type: commit ? "commit" : "rollback",
        xid: t.header.xid,
        branch: b,
        term: t.decision.term,
        decidedAtMs: t.decision.atMs,
        ...(t.decision.evidence?.[b.n] === undefined ? {} : { evidence: t.decision.evidence[b.n] }),
      });
    }
  }

  private isDone(live: Live, n: number): boolean {
    return !live.phase2.has(n);
  }

  private phase2Done(xid: Xid, n: BranchNo, outcome: Phase2Outcome): void {
    const live = this.live.get(xid);
    const track = live?.phase2.get(n);
    if (!live || !track) return;
    live.phase2.delete(n);
    this.pendingAcks.push({
      xid,
      n,
      outcome: outcome.outcome,
      ...("detail" in outcome ? { detail: outcome.detail } : {}),
    });
    this.flushAcks();
    const t = this.table.get(xid);
    if (t) this.sendDuePhase2(live, t);
  }

  private phase2Failed(xid: Xid, n: BranchNo, error: string): void {
    const live = this.live.get(xid);
    const track = live?.phase2.get(n);
    if (!live || !track) return;
    track.inFlight = false;
    track.lastError = error;
    track.attempt += 1;
    track.dueMs = this.nowMs + backoffMs(this.cfg.phase2Backoff, track.attempt, this.random);
    if (!live.phase2Stalled) {
      live.phase2Stalled = true;
      // The decision is durable: tell the waiting clients `committing` rather than hold them.
      for (const w of live.waiting.splice(0)) {
        this.reply(w.req, { kind: "txn", view: this.liveView(live) });
      }
    }
  }

  private flushAcks(): void {
    if (this.acksInFlight || this.pendingAcks.length === 0) return;
    this.acksInFlight = true;
    this.out.push({
      type: "append",
      record: { type: "acks", v: 1, acks: this.pendingAcks, atMs: this.nowMs },
    });
    this.pendingAcks = [];
  }

  private maybeFinished(xid: Xid): void {
    const live = this.live.get(xid);
    const t = this.table.get(xid);
    if (!live || !t) return;
    const state = durableState(t);
    if (state !== "committed" && state !== "aborted") return;
    live.state = state;
    this.answerWaiting(live, t);
    this.live.delete(xid);
    this.finishedAt.push({ xid, atMs: this.nowMs });
  }

  private answerWaiting(live: Live, t: DurableTxn): void {
    for (const w of live.waiting.splice(0)) {
      if (w.type === "abort" && t.decision?.decision === "commit") {
        this.reply(w.req, alreadyCommitted(t.header.xid));
      } else this.reply(w.req, { kind: "txn", view: viewOfDurable(t) });
    }
  }

  // ---- recovery ---------------------------------------------------------------------------

  /**
   * Settles prepared branches the log does not explain (issue #4): unknown to the log → roll
   * back (presumed abort); of a decided transaction but not being driven → its decision again.
   * Everything living is left alone: a transaction this node drives, an undecided one (its
   * deadline decides it), a branch whose phase 2 is under way, and anything that changed
   * since the scan began — its lists may be stale, and the next scan will see it afresh.
   */
  private recovered(input: Extract<Input, { type: "recovered" }>): void {
    if (!this.leader) return this.reply(input.req, notLeader());
    const forgotSince = this.lastForgetIndex > input.startedAtIndex;
    const groups = new Map<Xid, { unknown: boolean; branches: BranchSpec[] }>();
    let found = 0;
    let committed = 0;
    let rolledBack = 0;
    for (const list of input.found) {
      for (const branchId of list.branchIds) {
        found += 1;
        const id = parseBranchId(this.cfg.clusterId, branchId);
        const t = id && this.table.get(id.xid);
        const action = id && this.orphanAction(id.xid, id.n, input.startedAtIndex, forgotSince);
        if (!id || !action) continue;
        const group = groups.get(id.xid) ?? { unknown: t === undefined, branches: [] };
        groups.set(id.xid, group);
        if (group.branches.some((b) => b.n === id.n)) continue;
        group.branches.push(
          t?.branches.find((b) => b.n === id.n) ?? {
            n: id.n,
            branchId: branchId as BranchSpec["branchId"],
            participant: list.participant,
            kind: list.kind,
            payload: { kind: "orphan" },
          },
        );
        if (action === "commit") committed += 1;
        else rolledBack += 1;
      }
    }
    for (const [xid, group] of groups) {
      this.recovering.add(xid);
      const beganAtMs = xidBeganAtMs(xid) ?? this.nowMs;
      const decision = this.table.get(xid)?.decision?.decision ?? "abort";
      this.out.push({
        type: "append",
        record: {
          type: "recover",
          v: 1,
          xid,
          ...(group.unknown
            ? {
                txn: {
                  xid,
                  principal: recoveryPrincipal,
                  beganAtMs,
                  deadlineMs: this.nowMs,
                  labels: {},
                },
              }
            : {}),
          branches: group.branches,
          reason: group.unknown
            ? "recovery: a prepared branch of a transaction the log does not know: presumed abort"
            : `recovery: a branch still prepared after the ${decision} decision was carried out`,
          atMs: this.nowMs,
        },
      });
    }
    this.reply(input.req, {
      kind: "recovery",
      report: { found, committed, rolledBack, left: found - committed - rolledBack },
    });
  }

  /** What recovery must do with branch `n` of `xid` found prepared, or undefined to leave it. */
  private orphanAction(
    xid: Xid,
    n: number,
    startedAtIndex: number,
    forgotSince: boolean,
  ): Decision | undefined {
    if (this.recovering.has(xid)) return undefined;
    const t = this.table.get(xid);
    if (!t) return this.live.has(xid) || forgotSince ? undefined : "abort";
    if (!t.decision) return undefined;
    if ((t.history.at(-1)?.index ?? 0) > startedAtIndex) return undefined;
    const driven = t.branches.some((b) => b.n === n) && !t.acks.has(n);
    return driven ? undefined : t.decision.decision;
  }

  // ---- operators ----------------------------------------------------------------------------

  /** An operator's heuristic resolution; refused (409) whenever it would break a guarantee. */
  private resolve(input: Extract<Input, { type: "resolve" }>): void {
    if (!this.leader) return this.reply(input.req, notLeader());
    const operator: Operator = { id: input.principal.id, reason: input.reason };
    const t = this.table.get(input.xid);
    const live = this.live.get(input.xid);
    if (!t && !live) return this.reply(input.req, notFound(input.xid));
    const decided = t?.decision?.decision;
    const refuse = (state: TxnState, why: string, details: Record<string, unknown> = {}) =>
      this.reply(
        input.req,
        errorReply("invalid-state", why, { xid: input.xid, state, ...details }),
      );
    const state = this.view(input.xid)?.state ?? "aborted";
    switch (input.action) {
      case "commit":
      case "abort": {
        if (decided === input.action) {
          return this.reply(input.req, { kind: "txn", view: this.viewOrThrow(input.xid) });
        }
        if (decided === "commit") return this.reply(input.req, alreadyCommitted(input.xid));
        if (decided === "abort") {
          return refuse(state, "the transaction is decided abort; a decision never changes");
        }
        const target = live ?? (t ? this.revive(t) : undefined);
        invariant(target !== undefined, "undecided transaction without state");
        if (target.proposing === "decide" || this.onePhasePending(target)) {
          return refuse(state, "its decision is being written; ask again in a moment");
        }
        if (input.action === "abort") {
          if (!this.waitOperator(input.xid, input.req)) return;
          return this.proposeDecision(
            target,
            "abort",
            "operator-abort",
            `aborted by operator ${operator.id}: ${operator.reason}`,
            undefined,
            undefined,
            operator,
          );
        }
        return this.forceCommit(input, target, operator, state);
      }
      case "settle":
        return this.settle(input, operator, state);
      case "forget": {
        if (!t || !isFinished(state)) {
          return refuse(state, "only a finished transaction can be forgotten");
        }
        if (heuristicOf(t) === undefined) {
          return refuse(
            state,
            "not a heuristic case: it is forgotten on its own after the retention time",
          );
        }
        if (!this.waitOperator(input.xid, input.req, viewOfDurable(t))) return;
        this.out.push({
          type: "append",
          record: { type: "forget", v: 1, xids: [input.xid], operator, atMs: this.nowMs },
        });
        return;
      }
    }
  }

  /** Commit by hand, only once every branch is prepared (a Kafka branch is its logged messages). */
  private forceCommit(
    input: Extract<Input, { type: "resolve" }>,
    live: Live,
    operator: Operator,
    state: TxnState,
  ): void {
    const logged = this.table.get(input.xid) !== undefined;
    // A Kafka branch holds nothing in Kafka: its messages in the log are its prepared state,
    // unless this leader heard it vote no (a missing topic, say).
    const notPrepared = live.branches
      .filter((b) =>
        b.spec.kind === "kafka"
          ? live.votes.get(b.spec.n)?.vote === "no"
          : !input.prepared.has(b.spec.branchId),
      )
      .map((b) => b.spec.n);
    const why = !logged
      ? "nothing is prepared yet: it never reached preparing"
      : notPrepared.length > 0
        ? `not every branch is prepared: branch ${notPrepared.join(", ")}`
        : this.nowMs > live.header.deadlineMs
          ? "its deadline has passed: only abort may be decided"
          : undefined;
    if (why) {
      return this.reply(
        input.req,
        errorReply("invalid-state", why, { xid: input.xid, state, notPrepared }),
      );
    }
    if (!this.waitOperator(input.xid, input.req)) return;
    this.proposeDecision(
      live,
      "commit",
      "operator-commit",
      `committed by operator ${operator.id}: ${operator.reason}`,
      undefined,
      undefined,
      operator,
    );
  }

  /** Records unfinished branches of a decided transaction as settled by hand. */
  private settle(
    input: Extract<Input, { type: "resolve" }>,
    operator: Operator,
    state: TxnState,
  ): void {
    const t = this.table.get(input.xid);
    if (!t?.decision) {
      return this.reply(
        input.req,
        errorReply("invalid-state", "only a decided transaction's branches can be settled", {
          xid: input.xid,
          state,
        }),
      );
    }
    if (input.branch !== undefined && !t.branches.some((b) => b.n === input.branch)) {
      return this.reply(
        input.req,
        errorReply("branch-not-found", `no branch ${input.branch}`, {
          xid: input.xid,
          branch: input.branch,
        }),
      );
    }
    const acks: Ack[] = t.branches
      .filter((b) => !t.acks.has(b.n) && (input.branch === undefined || b.n === input.branch))
      .map((b) => ({
        xid: input.xid,
        n: b.n,
        outcome: "settled-by-operator",
        detail: `by ${operator.id}: ${operator.reason}`,
      }));
    if (acks.length === 0) return this.reply(input.req, { kind: "txn", view: viewOfDurable(t) });
    if (!this.waitOperator(input.xid, input.req)) return;
    this.out.push({
      type: "append",
      record: { type: "acks", v: 1, acks, operator, atMs: this.nowMs },
    });
  }

  /** The operator waits for the record about to be proposed; false (refused) when too many do. */
  private waitOperator(xid: Xid, req: ReqId, last?: TxnView): boolean {
    let waiting = 0;
    for (const w of this.operatorWaits.values()) waiting += w.length;
    if (waiting >= this.cfg.operatorCallsWaitingMax) {
      this.reply(req, tooManyWaiting("operatorCallsWaitingMax", this.cfg.operatorCallsWaitingMax));
      return false;
    }
    const waits = this.operatorWaits.get(xid) ?? [];
    waits.push({ req, ...(last ? { last } : {}) });
    this.operatorWaits.set(xid, waits);
    return true;
  }

  /** An entry about these transactions was applied: operators waiting on them hear the outcome. */
  private answerOperators(xids: readonly Xid[]): void {
    for (const xid of xids) {
      for (const w of this.operatorWaits.get(xid) ?? []) {
        const view = this.view(xid) ?? w.last;
        this.reply(
          w.req,
          view ? { kind: "txn", view } : errorReply("outcome-unknown", "the transaction is gone"),
        );
      }
      this.operatorWaits.delete(xid);
    }
  }

  private failOperators(xids: readonly Xid[], error: string): void {
    for (const xid of xids) {
      for (const w of this.operatorWaits.get(xid) ?? []) {
        this.reply(
          w.req,
          errorReply("outcome-unknown", `the log did not take the entry: ${error}`),
        );
      }
      this.operatorWaits.delete(xid);
    }
  }

  // ---- shutdown -----------------------------------------------------------------------------

  /**
   * The node is going away: a transaction that never reached `preparing` lives only in this
   * node's memory and cannot be saved, so it is aborted durably now (its client then hears
   * `aborted`, not silence). Everything the log holds is resumed by the next start.
   */
  private abandon(): void {
    if (!this.leader) return;
    for (const live of this.live.values()) {
      if (live.state !== "active" || live.proposing !== undefined) continue;
      this.proposeDecision(live, "abort", "shutdown", "the node shut down before a decision");
    }
  }

  // ---- time -------------------------------------------------------------------------------

  private tick(): void {
    if (!this.leader) return;
    for (const live of this.live.values()) {
      const undecidedState =
        live.state === "active" || live.state === "preparing" || live.state === "prepared";
      if (
        undecidedState &&
        this.nowMs > live.header.deadlineMs &&
        live.proposing === undefined &&
        !this.onePhasePending(live)
      ) {
        this.proposeDecision(live, "abort", "deadline-passed", "deadline passed");
        continue;
      }
      if (live.onePhaseCheckDueMs !== undefined && live.onePhaseCheckDueMs <= this.nowMs) {
        live.onePhaseCheckDueMs = undefined;
        this.out.push({
          type: "check-one-phase",
          xid: live.header.xid,
          branch: only(live.branches).spec,
          deadlineMs: live.header.deadlineMs,
          principal: live.header.principal,
        });
      }
      const t = this.table.get(live.header.xid);
      if (t?.decision && live.phase2.size > 0) this.sendDuePhase2(live, t);
    }
    // Undecided in the log but not driven here (the leader restarted): abort at the deadline.
    for (const xid of this.undecided) {
      const t = this.table.get(xid);
      if (!t || this.live.has(xid) || t.onePhase || this.nowMs <= t.header.deadlineMs) continue;
      this.proposeDecision(this.revive(t), "abort", "deadline-passed", "deadline passed");
    }
    this.forgetExpired();
    this.keys.expire(this.nowMs);
  }

  private forgetExpired(): void {
    if (this.forgetInFlight) return;
    const xids: Xid[] = [];
    while (xids.length < this.cfg.forgetBatchMax) {
      const head = this.finishedAt[0];
      if (!head || head.atMs + this.cfg.retentionMs > this.nowMs) break;
      this.finishedAt.shift();
      const t = this.table.get(head.xid);
      // Heuristic cases stay until an operator forgets them; one reopened by recovery is
      // queued again when it finishes.
      if (!t || heuristicOf(t) !== undefined || !isFinished(durableState(t))) continue;
      xids.push(head.xid);
    }
    if (xids.length === 0) return;
    this.forgetInFlight = true;
    this.out.push({ type: "append", record: { type: "forget", v: 1, xids, atMs: this.nowMs } });
  }

  // ---- helpers ----------------------------------------------------------------------------

  /** Refuses (409) a call whose key was first used for another call; says whether it did. */
  private refusedKey(input: KeyedInput): boolean {
    const use = this.priorUse(input);
    if (!input.idem || !use || use.fingerprint === input.idem.fingerprint) return false;
    this.reply(input.req, keyReused(input.idem.key));
    return true;
  }

  private priorUse(input: KeyedInput): KeyUse | undefined {
    return this.keys.find(input.principal.id, input.idem, this.nowMs);
  }

  /** The call changed something: from now on its key answers as it did. */
  private holdKey(input: KeyedInput, use: Pick<KeyUse, "xid" | "branch">): void {
    this.keys.rememberCall(input.principal.id, input.idem, use, this.nowMs);
  }

  /** The call waits for what its transaction does next; false (refused) when too many do. */
  private wait(live: Live, input: KeyedCall, type: WaitType): boolean {
    if (live.waiting.length >= this.cfg.callsWaitingPerTxnMax) {
      const max = this.cfg.callsWaitingPerTxnMax;
      this.reply(input.req, tooManyWaiting("callsWaitingPerTransactionMax", max));
      return false;
    }
    const key = input.idem && { principal: input.principal.id, ...input.idem };
    live.waiting.push({ req: input.req, type, ...(key ? { key } : {}) });
    this.holdKey(input, { xid: live.header.xid });
    return true;
  }

  /** The live transaction a client call may drive, or a reply explaining why not. */
  private driven(input: { req: ReqId; principal: Principal; xid: Xid }): Live | undefined {
    if (!this.leader) {
      this.reply(input.req, notLeader());
      return undefined;
    }
    const live = this.live.get(input.xid);
    const header = live?.header ?? this.table.get(input.xid)?.header;
    if (!header) {
      this.reply(input.req, notFound(input.xid));
      return undefined;
    }
    if (!this.mayDrive(input.principal, header)) {
      this.reply(input.req, forbidden(input.xid));
      return undefined;
    }
    if (!live) {
      const t = this.table.get(input.xid);
      this.reply(input.req, invalidState(input.xid, t ? durableState(t) : "aborted", "change"));
      return undefined;
    }
    return live;
  }

  private mayDrive(principal: Principal, header: TxnHeader): boolean {
    // Recovery does not know who began a transaction it found: its xid is the only key, as
    // for the presumed-abort answer about an unknown one.
    return (
      principal.admin || principal.id === header.principal || header.principal === recoveryPrincipal
    );
  }

  /** Rebuilds the leader's tracking of a transaction from the log (after a restart). */
  private revive(t: DurableTxn): Live {
    const existing = this.live.get(t.header.xid);
    if (existing) return existing;
    const live: Live = {
      header: t.header,
      state: durableState(t),
      branches: t.branches.map((spec) => ({
        spec,
        servicePrepared: isServicePrepared(spec.payload),
      })),
      votes: new Map(),
      payloadBytes: 0,
      preparesOut: new Set(),
      branchesFixed: true,
      // A prepare-only transaction stays one after a restart: a repeated prepare must not commit.
      prepareOnly: t.prepareOnly === true,
      waiting: [],
      phase2: new Map(),
      phase2Stalled: false,
    };
    this.live.set(t.header.xid, live);
    return live;
  }

  /** Its one-phase `preparing` entry is applied and undecided: the branch's outcome decides. */
  private onePhasePending(live: Live): boolean {
    const t = this.table.get(live.header.xid);
    return t !== undefined && t.onePhase && t.decision === undefined;
  }

  private viewOrThrow(xid: Xid): TxnView {
    const view = this.view(xid);
    invariant(view !== undefined, `no view of ${xid}`);
    return view;
  }

  private reviveUndecided(xid: Xid): Live | undefined {
    const t = this.table.get(xid);
    if (!t || t.decision) return undefined;
    return this.revive(t);
  }

  private liveView(live: Live): TxnView {
    const t = this.table.get(live.header.xid);
    if (t) return viewOfDurable(t, live.votes, live.state === "prepared" ? "prepared" : undefined);
    return viewOfLive(
      live.header,
      live.state,
      live.branches.map((b) => ({
        spec: b.spec,
        vote: live.votes.get(b.spec.n),
      })),
    );
  }

  private replyBranch(req: ReqId, spec: BranchSpec, created: boolean): void {
    this.reply(req, { kind: "branch", branch: spec.n, branchId: spec.branchId, created });
  }

  private reply(req: ReqId, reply: Reply): void {
    this.out.push({ type: "reply", req, reply });
  }
}

/** The principal recorded on transactions that recovery found in participants. */
const recoveryPrincipal = "verdict-recovery";

function only<T>(items: readonly T[]): T {
  invariant(
    items.length === 1 && items[0] !== undefined,
    `expected one branch, found ${items.length}`,
  );
  return items[0];
}

function isServicePrepared(payload: unknown): boolean {
  return (
    typeof payload === "object" &&
    payload !== null &&
    (payload as { kind?: unknown }).kind === "service-prepared"
  );
}

function unknownAborted(xid: Xid): TxnView {
  return {
    xid,
    state: "aborted",
    decision: "abort",
    reason: {
      code: "presumed-abort",
      message: "unknown to the log: a transaction that never reached preparing did not commit",
    },
    deadlineMs: 0,
    labels: {},
    branches: [],
  };
}

function errorReply(
  code: EngineErrorCode,
  message: string,
  details?: Record<string, unknown>,
): Reply {
  return { kind: "error", code, message, ...(details ? { details } : {}) };
}

type KeyedInput = { req: ReqId; principal: Principal; idem?: Idem };
type KeyedCall = XidCall & { readonly idem?: Idem };

const tooManyWaiting = (limit: string, max: number): Reply =>
  errorReply("unavailable", `over ${limit} (${max}): ask again in a moment`, { limit, max });
const overLimit = (limit: string, max: number): Reply =>
  errorReply("limit-exceeded", `over ${limit} (${max})`, { limit, max });
const notLeader = (): Reply => errorReply("not-leader", "this node is not the leader");
const notFound = (xid: Xid): Reply =>
  errorReply("transaction-not-found", `no transaction ${xid}`, { xid });
const forbidden = (xid: Xid): Reply =>
  errorReply("forbidden", "the transaction belongs to another principal", { xid });
const keyReused = (key: string): Reply =>
  errorReply("idempotency-key-reused", "the idempotency key was used for another request", {
    key,
  });
const alreadyCommitted = (xid: Xid): Reply =>
  errorReply("transaction-committed", "the transaction is decided commit; it cannot be aborted", {
    xid,
  });
const invalidState = (xid: Xid, state: TxnState, action: string): Reply =>
  errorReply("invalid-state", `cannot ${action} in state ${state}`, { xid, state });
