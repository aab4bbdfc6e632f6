/**
 * What only a leader holds, built by `becomeLeader` and dropped whole on step-down: the live
 * transactions and their waiting calls, votes and phase-2 tracks, operators waiting, recovery
 * records on their way, the acknowledgement and forget batches, idempotency keys. Nothing here
 * is replicated; the replica (replica.ts) is read, never written, except by applying entries.
 *
 * A new leader starts catching up: it serves nothing that depends on the table until the
 * table has applied everything the log held when the leadership began (`catchUpIndex`).
 */
import type { RecordedWork } from "../../shared/branch-work.js";
import { invariant } from "./assert.js";
import type { Term, Xid } from "./ids.js";
import { IdempotencyKeys, type KeyUse } from "./idempotency.js";
import type {
  EngineConfig,
  Idem,
  Output,
  Principal,
  Proposal,
  Reply,
  ReqId,
  WaitType,
  XidCall,
} from "./inputs.js";
import { OrderedXids } from "./ordered-xids.js";
import { releaseWork } from "./payload.js";
import {
  enter,
  newPhase2,
  phase2Heard,
  newPreparing,
  stateOf,
  votesOf,
  withHeard,
  type LiveTxn,
  type Phase,
} from "./phase.js";
import type { Ack, LogRecord, TxnHeader } from "./records.js";
import type { Replica } from "./replica.js";
import { forbidden, invalidState, keyReused, notFound, tooManyWaiting } from "./replies.js";
import { durableState, type DurableTxn, type TxnTable } from "./table.js";
import { viewOfDurable, viewOfLive, type TxnView } from "./view.js";

/** The step in progress: the clock of its input and the outputs it has produced so far. */
export interface Io {
  nowMs: number;
  out: Output[];
}

/** The principal recorded on transactions that recovery found in participants. */
export const recoveryPrincipal = "verdict-recovery";

export type KeyedInput = { req: ReqId; principal: Principal; idem?: Idem };
export type KeyedCall = XidCall & { readonly idem?: Idem };

export class Leader {
  readonly live = new Map<Xid, LiveTxn>();
  readonly keys: IdempotencyKeys;
  /** Operators waiting for the entry their resolution wrote; a forget keeps the last view. */
  readonly operatorWaits = new Map<Xid, { req: ReqId; last?: TxnView }[]>();
  /** Transactions with a `recover` proposal on its way to the log → that proposal. */
  readonly recovering = new Map<Xid, number>();
  pendingAcks: Ack[] = [];
  acksProposal: number | undefined;
  forgetProposal: number | undefined;
  /** Finished transactions in the order they may be forgotten (forget-queue.ts). */
  readonly forgetDue: { xid: Xid; dueMs: number }[] = [];
  /** The admin list's overlay on the replica's (admin.ts): prepared ones, and those only live. */
  readonly listPrepared = new OrderedXids();
  readonly listLiveOnly = new OrderedXids();
  private nextProposal = 1;
  private caughtUpState = false;

  constructor(
    readonly term: Term,
    /** The log's last index when the leadership began: served only once applied. */
    readonly catchUpIndex: number,
    readonly cfg: EngineConfig,
    readonly random: () => number,
    readonly replica: Replica,
    private readonly io: Io,
  ) {
    this.keys = new IdempotencyKeys(cfg);
  }

  get caughtUp(): boolean {
    return this.caughtUpState;
  }

  /** The table holds all the log held when leadership began: rebuild the keys it logged. */
  markCaughtUp(): void {
    invariant(!this.caughtUpState, "caught up twice");
    invariant(this.table.appliedIndex >= this.catchUpIndex, "caught up before applying the log");
    this.caughtUpState = true;
    for (const t of this.table.all())
      this.keys.rememberLogged(t.header.xid, t.keys ?? [], this.nowMs);
  }

  get nowMs(): number {
    return this.io.nowMs;
  }

  get table(): TxnTable {
    return this.replica.table;
  }

  emit(o: Output): void {
    this.io.out.push(o);
  }

  reply(req: ReqId, reply: Reply): void {
    this.emit({ type: "reply", req, reply });
  }

  /** Proposes `record`; returns the proposal's id, which its result will carry. */
  propose(record: LogRecord): number {
    const id = this.nextProposal++;
    this.emit({ type: "append", record, proposal: { id, term: this.term } });
    return id;
  }

  /** Whether `p` is this leadership's proposal `id`. */
  isMine(p: Proposal | undefined, id: number | undefined): boolean {
    return p !== undefined && id !== undefined && p.term === this.term && p.id === id;
  }

  /** The current view: the applied table, with what only the leader knows of the live. */
  view(xid: Xid): TxnView | undefined {
    const live = this.live.get(xid);
    const t = this.table.get(xid);
    if (t) return durableView(t, live?.phase);
    return live ? this.liveView(live) : undefined;
  }

  liveView(live: LiveTxn): TxnView {
    const t = this.table.get(live.header.xid);
    if (t) return durableView(t, live.phase);
    const votes = votesOf(live.phase);
    return viewOfLive(
      live.header,
      stateOf(live.phase),
      live.branches.map((b) => ({ spec: b.spec, vote: votes?.get(b.spec.n) })),
    );
  }

  /** Rebuilds the leader's tracking of a transaction from the log (after a restart). */
  revive(t: DurableTxn): LiveTxn {
    const existing = this.live.get(t.header.xid);
    if (existing) return existing;
    const state = durableState(t);
    const decision = t.decision?.decision;
    const phase: Phase =
      decision === undefined
        ? newPreparing()
        : state === "committed" || state === "aborted"
          ? { kind: "finished", decision }
          : newPhase2(decision, new Map());
    const live: LiveTxn = {
      header: t.header,
      branches: t.branches.map((spec) => ({
        // Only a prepare re-driven needs work: phase 2 drives the table's branches.
        spec: decision === undefined ? spec : releaseWork(spec),
        servicePrepared: isServicePrepared(spec.payload),
      })),
      // A prepare-only transaction stays one after a restart: a repeated prepare must not commit.
      prepareOnly: t.prepareOnly === true,
      waiting: [],
      phase,
    };
    this.live.set(t.header.xid, live);
    return live;
  }

  /** Its one-phase `preparing` entry is applied and undecided: the branch's outcome decides. */
  onePhasePending(live: LiveTxn): boolean {
    const t = this.table.get(live.header.xid);
    return t !== undefined && t.onePhase && t.decision === undefined;
  }

  mayDrive(principal: Principal, header: TxnHeader): boolean {
    // Recovery does not know who began a transaction it found: its xid is the only key, as
    // for the presumed-abort answer about an unknown one.
    return (
      principal.admin || principal.id === header.principal || header.principal === recoveryPrincipal
    );
  }

  /** The live transaction a client call may drive, or a reply explaining why not. */
  driven(input: XidCall): LiveTxn | undefined {
    const live = this.live.get(input.xid);
    const header = live?.header ?? this.table.get(input.xid)?.header;
    if (!header) return void this.reply(input.req, notFound(input.xid));
    if (!this.mayDrive(input.principal, header)) {
      return void this.reply(input.req, forbidden(input.xid));
    }
    if (!live) {
      const t = this.table.get(input.xid);
      this.reply(input.req, invalidState(input.xid, t ? durableState(t) : "aborted", "change"));
    }
    return live;
  }

  /** The call waits for what its transaction does next; false (refused) when too many do. */
  wait(live: LiveTxn, input: KeyedCall, type: WaitType): boolean {
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

  /** Refuses (409) a call whose key was first used for another call; says whether it did. */
  refusedKey(input: KeyedInput): boolean {
    const use = this.priorUse(input);
    if (!input.idem || !use || use.fingerprint === input.idem.fingerprint) return false;
    this.reply(input.req, keyReused(input.idem.key));
    return true;
  }

  priorUse(input: KeyedInput): KeyUse | undefined {
    return this.keys.find(input.principal.id, input.idem, this.nowMs);
  }

  /** The call changed something: from now on its key answers as it did. */
  holdKey(input: KeyedInput, use: Pick<KeyUse, "xid" | "branch">): void {
    this.keys.rememberCall(input.principal.id, input.idem, use, this.nowMs);
  }

  /** The phase-2 variant for a decision just applied, from whatever phase it was in. */
  enterPhase2(live: LiveTxn, t: DurableTxn): void {
    invariant(t.decision !== undefined, `phase 2 of ${t.header.xid} before its decision`);
    const decision = t.decision.decision;
    if (live.phase.kind === "phase2" || live.phase.kind === "finished") {
      invariant(
        live.phase.decision === decision,
        `live decision ${live.phase.decision} disagrees with decision ${decision} of ${t.header.xid}`,
      );
      return;
    }
    const votes = votesOf(live.phase);
    enter(live, newPhase2(decision, new Map(votes ?? [])));
    // Phase 2 drives the table's branches (which keep a committing Kafka branch's messages).
    for (const b of live.branches) b.spec = releaseWork(b.spec);
  }
}

function durableView(t: DurableTxn, phase: Phase | undefined): TxnView {
  // Once every phase-2 call returned, the view is the finished one (no votes): the answer the
  // waiting calls got (phase2.ts answerWaiting), so a replayed key answers the same before and
  // after the `acks` record lands.
  return viewOfDurable(
    withHeard(t, phase),
    phase && !phase2Heard(phase) ? votesOf(phase) : undefined,
    phase && stateOf(phase) === "prepared" ? "prepared" : undefined,
  );
}

export function isServicePrepared(work: RecordedWork): boolean {
  return work.kind === "service-prepared";
}

export function only<T>(items: readonly T[]): T {
  invariant(
    items.length === 1 && items[0] !== undefined,
    `expected one branch, found ${items.length}`,
  );
  return items[0];
}
