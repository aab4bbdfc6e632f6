/**
 * A deterministic simulator of a three-node Verdict cluster over a model of etcd
 * (sim-etcd.ts), for the property tests; one seeded PRNG drives it, so a seed replays exactly.
 * It plays every node's shell, as the driver and EtcdDecisionLog do:
 * - Leadership: a node campaigns when the election key is absent, reads the log linearizably
 *   (the takeover read), calls becomeLeader(term) and catches up from its warm replica; a
 *   leader is deposed at any step (a lease lost to a pause or a cut from etcd): it demotes
 *   (stepDown) before its lease expires, then the key goes. A node can crash and restart empty.
 * - Appends: one Txn in flight per leader, each guarded by both compares; a Txn is delivered to
 *   etcd at a later step, perhaps after its leader was deposed; an answer can be lost, and then
 *   the same entry is re-sent at the same index and decided from what is there. Sometimes a new
 *   leader's shell numbers from a stale log end (a lagging leader): the create-revision compare
 *   refuses it, and it stops leading.
 * - Participants (sim-postgres.ts: harness.ts's fakes, whose one-phase check fences the marker
 *   key, and PostgreSQL calls that can pause holding it): a call stays on the wire (sim-wire.ts)
 *   after its sender is deposed and may arrive after the successor's; answers reach the node
 *   only while the term that asked leads.
 * The checkers (sim-checks.ts) run after every step; a healed phase then checks that all settles.
 */
import {
  Engine,
  type EngineConfig,
  type Input,
  type Output,
} from "../../../coordinator/core/engine.js";
import type { LogIndex, Term } from "../../../coordinator/core/ids.js";
import type { LogRecord } from "../../../coordinator/core/records.js";
import type { Proposal } from "../../../coordinator/core/inputs.js";
import type { ParticipantKind } from "../../../participants/participant.js";
import {
  describeInput,
  describeOutput,
  engineConfig,
  participantSpecs,
  Rng,
  type EngineFactory,
} from "./harness.js";
import { ClusterChecks } from "./sim-checks.js";
import { Clients } from "./sim-clients.js";
import { MarkerParticipant } from "./sim-postgres.js";
import { Wire, type WireStats } from "./sim-wire.js";
import { EtcdModel, type AppendAnswer, type EtcdModelOptions, type LogValue } from "./sim-etcd.js";

export type ParticipantFactory = (
  name: string,
  kind: ParticipantKind,
  violation: (what: string) => void,
) => MarkerParticipant;

export interface ClusterOptions {
  readonly seed: number;
  readonly steps: number;
  readonly txnsMax: number;
  readonly onePhase: boolean;
  readonly makeEngine?: EngineFactory;
  readonly makeParticipant?: ParticipantFactory;
  readonly etcd?: EtcdModelOptions;
}

export interface ClusterStats extends WireStats {
  txns: number;
  committed: number;
  aborted: number;
  takeovers: number;
  crashes: number;
  /** Appends refused by the create-revision compare (a lagging leader). */
  conflicts: number;
  /** Appends re-sent after a lost answer, and those that found their first send landed. */
  resends: number;
  foundLanded: number;
  /** Appends of a deposed term refused by the leadership compare. */
  refusedAppends: number;
}

export interface ClusterResult {
  readonly seed: number;
  readonly violations: readonly string[];
  readonly stats: ClusterStats;
  readonly trace: readonly string[];
}

interface SimNode {
  readonly id: number;
  engine: Engine;
  /** The term this node's shell leads in, if any; `ledTerm` is the last it led. */
  term?: number;
  ledTerm: number;
  /** The log's last index at the takeover read: the replica catches up to it. */
  catchUpTo: number;
  nextIndex: number;
  queue: { record: LogRecord; proposal: Proposal }[];
  inflight?: { index: number; value: LogValue; proposal: Proposal };
}

interface Txn {
  readonly node: number;
  readonly term: number;
  readonly index: number;
  readonly value: LogValue;
}

const nodesMax = 3;
const healDrainMax = 10_000;
const traceMax = Number(process.env.TRACE_MAX ?? 80);

export class ClusterSim {
  private readonly rng: Rng;
  private readonly cfg: EngineConfig;
  private readonly makeEngine: EngineFactory;
  private readonly etcd: EtcdModel;
  private readonly nodes: SimNode[];
  private readonly participants: MarkerParticipant[];
  private readonly checks: ClusterChecks;
  private readonly clients: Clients;
  private readonly endedTerms = new Set<number>();
  private txns: Txn[] = [];
  private txnAnswers: { node: number; term: number; index: number; answer: AppendAnswer }[] = [];
  private readonly wire: Wire;
  private healing = false;
  private nowMs = 1_000;
  private step = 0;
  readonly violations: string[] = [];
  private readonly trace: string[] = [];
  readonly stats: ClusterStats = {
    txns: 0,
    committed: 0,
    aborted: 0,
    takeovers: 0,
    crashes: 0,
    lateCalls: 0,
    lateAfterSuccessor: 0,
    paused: 0,
    conflicts: 0,
    resends: 0,
    foundLanded: 0,
    refusedAppends: 0,
  };

  constructor(private readonly opts: ClusterOptions) {
    this.rng = new Rng(opts.seed);
    // Both prepare orders, by seed (a replayed seed runs the same one).
    this.cfg = engineConfig(opts.onePhase, opts.seed % 3 === 0 ? "ordered" : "parallel");
    this.makeEngine = opts.makeEngine ?? ((cfg, random) => new Engine(cfg, random));
    this.etcd = new EtcdModel(opts.etcd ?? { createRevisionCompare: true });
    const make = opts.makeParticipant ?? ((n, k, v) => new MarkerParticipant(n, k, v));
    this.participants = participantSpecs.map((p) =>
      make(p.name, p.kind, (what) => this.violate("G1", what)),
    );
    this.nodes = Array.from({ length: nodesMax }, (_, id) => ({
      id,
      engine: this.newEngine(),
      ledTerm: 0,
      catchUpTo: 0,
      nextIndex: 1,
      queue: [],
    }));
    const violate = (rule: string, what: string) => this.violate(rule, what);
    this.checks = new ClusterChecks(this.etcd, this.participants, violate);
    this.clients = new Clients(this.rng, this.participants, this.checks, opts.txnsMax, violate);
    this.wire = new Wire({
      rng: this.rng,
      participants: this.participants,
      checks: this.checks,
      stats: this.stats,
      note: (what) => this.note(what),
      ended: (term) => this.endedTerms.has(term),
      clock: () => ({ step: this.step, healing: this.healing }),
    });
  }

  /** Fault phase, healed phase, final checks; stops at the first violation. */
  run(): ClusterResult {
    for (this.step = 1; this.step <= this.opts.steps && this.ok(); this.step++)
      this.guard(() => this.randomStep());
    if (this.ok()) this.guard(() => this.heal());
    if (this.ok()) this.checks.final();
    this.stats.txns = this.clients.begun;
    this.stats.foundLanded = this.etcd.foundLanded;
    this.stats.refusedAppends = this.etcd.refused;
    for (const m of this.checks.model.values()) {
      if (m.decision === "commit") this.stats.committed += 1;
      if (m.decision === "abort") this.stats.aborted += 1;
    }
    return {
      seed: this.opts.seed,
      violations: this.violations,
      stats: this.stats,
      trace: this.trace,
    };
  }

  private ok(): boolean {
    return this.violations.length === 0;
  }

  private newEngine(): Engine {
    return this.makeEngine(this.cfg, () => this.rng.next());
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.violate("crash", `engine threw: ${e instanceof Error ? e.stack : String(e)}`);
    }
  }

  private randomStep(): void {
    this.nowMs += this.rng.int(25);
    if (this.rng.chance(0.01)) this.nowMs += 500 + this.rng.int(2000);
    const leader = this.leader();
    if (leader && this.rng.chance(0.012)) this.depose(leader, "lease lost");
    else if (this.rng.chance(0.004)) this.crash(this.rng.pick(this.nodes));
    else if (!leader && this.rng.chance(0.3)) this.elect();
    else {
      const roll = this.rng.next();
      if (roll < 0.25) this.clientStep();
      else if (roll < 0.42) this.wire.deliverCall();
      else if (roll < 0.45) this.wire.resumePaused();
      else if (roll < 0.6) this.deliverAnswer();
      else if (roll < 0.72) this.deliverTxn();
      else if (roll < 0.8) this.deliverTxnAnswer();
      else if (roll < 0.92) this.watch(this.watcher(), 1 + this.rng.int(8));
      else this.tick();
    }
    this.checks.afterStep(this.nodes.map((n) => n.engine));
  }

  /** Whose replica applies entries next: often a leader still catching up. */
  private watcher(): SimNode {
    const l = this.leader();
    const catchingUp = l && l.engine.table.appliedIndex < l.catchUpTo;
    return catchingUp && this.rng.chance(0.5) ? l : this.rng.pick(this.nodes);
  }

  private leader(): SimNode | undefined {
    return this.nodes.find((n) => n.term !== undefined);
  }

  // ---- leadership ---------------------------------------------------------------------------

  /** A node that does not lead campaigns; the winner reads the log and takes over. */
  private elect(): void {
    const candidates = this.nodes.filter((n) => !n.engine.isLeader);
    if (candidates.length === 0) return;
    const node = this.rng.pick(candidates);
    const term = this.etcd.campaign(node.id);
    if (term === undefined) return;
    this.stats.takeovers += 1;
    const end = this.etcd.lastIndex;
    // A lagging leader: its shell numbers appends from a stale end (never in the healed phase).
    const lag = !this.healing && end > 0 && this.rng.chance(0.1) ? 1 + this.rng.int(end) : 0;
    Object.assign(node, { term, ledTerm: term, catchUpTo: end, nextIndex: end + 1 - lag });
    this.note(
      `node ${node.id} leads term ${term}, log end ${end}${lag ? `, numbers from ${end + 1 - lag}` : ""}`,
    );
    // Mostly the takeover read is replayed at once; otherwise the replica catches up later.
    if (this.rng.chance(0.6)) this.watch(node, end);
    this.emit(node, node.engine.becomeLeader(term as Term, this.nowMs, end));
  }

  /**
   * The node demotes itself before its lease runs out (paused, or cut off from etcd), then
   * the key goes. Its appends on the wire land first or fail; its calls stay on the wire,
   * often until the next leader has acted.
   */
  private depose(node: SimNode, why: string): void {
    const term = node.term;
    if (term === undefined) return;
    this.note(`node ${node.id} deposed from term ${term}: ${why}`);
    node.term = undefined;
    node.queue = [];
    delete node.inflight;
    this.emit(node, node.engine.stepDown());
    for (const t of this.txns.filter((x) => x.term === term))
      if (this.rng.chance(0.5)) this.execTxn(t);
    this.etcd.expire(term);
    this.endedTerms.add(term);
    this.wire.holdTerm(term);
  }

  private crash(node: SimNode): void {
    this.stats.crashes += 1;
    this.depose(node, "crashed");
    this.note(`node ${node.id} restarts empty`);
    node.engine = this.newEngine();
  }

  // ---- the log ------------------------------------------------------------------------------

  private emit(node: SimNode, outputs: readonly Output[]): void {
    for (const o of outputs) {
      this.note(`node ${node.id} out ${describeOutput(o)}`);
      switch (o.type) {
        case "append":
          if (node.term === undefined) break; // the log of a deposed term refuses it
          node.queue.push({ record: o.record, proposal: o.proposal });
          this.pump(node);
          break;
        case "reply":
          this.clients.replied(o.req, o.reply);
          break;
        case "forgotten":
          break;
        default: {
          const term = node.term ?? node.ledTerm;
          this.checks.sent(o, term, this.endedTerms.has(term));
          this.wire.send(o, node.id, term);
        }
      }
    }
  }

  /** Group commit, one record per Txn: at most one append in flight per leader. */
  private pump(node: SimNode): void {
    const next = node.queue[0];
    if (node.term === undefined || node.inflight || !next) return;
    node.queue.shift();
    const { record, proposal } = next;
    const bytes = JSON.stringify({ term: node.term, proposal: proposal.id, record });
    const value: LogValue = { term: node.term, record, bytes };
    node.inflight = { index: node.nextIndex++, value, proposal };
    this.txns.push({ node: node.id, term: node.term, index: node.inflight.index, value });
  }

  /** A Txn reaches etcd, or is lost on the way (then its sender re-sends it). */
  private deliverTxn(): void {
    const t = this.txns[this.rng.int(this.txns.length)];
    if (!t) return;
    if (this.healing || !this.rng.chance(0.05)) return this.execTxn(t);
    this.txns = this.txns.filter((x) => x !== t);
    this.note(`term ${t.term}'s append at ${t.index} lost on the way`);
    this.resend(t);
  }

  /** etcd executes the Txn; its answer may be lost on the way back. */
  private execTxn(t: Txn): void {
    this.txns = this.txns.filter((x) => x !== t);
    const answer = this.etcd.append(t.term, t.index, t.value);
    this.note(`etcd: term ${t.term}'s append at ${t.index}: ${answer}`);
    if (!this.healing && this.rng.chance(0.1)) return this.resend(t);
    this.txnAnswers.push({ node: t.node, term: t.term, index: t.index, answer });
  }

  /** The answer was lost: the shell sends the same entry at the same index again. */
  private resend(t: Txn): void {
    const node = this.nodes[t.node];
    if (node?.term !== t.term || node.inflight?.index !== t.index) return;
    this.stats.resends += 1;
    this.txns.push(t);
  }

  private deliverTxnAnswer(): void {
    const a = this.txnAnswers.splice(this.rng.int(this.txnAnswers.length), 1)[0];
    const node = a && this.nodes[a.node];
    if (!a || !node || node.term !== a.term || node.inflight?.index !== a.index) return;
    const { value, proposal } = node.inflight;
    switch (a.answer) {
      case "landed":
        delete node.inflight;
        this.feed(node, { type: "applied", entry: entryOf(a.index, value), proposal });
        return this.pump(node);
      case "not-leader":
        return this.depose(node, "etcd says another term leads");
      case "conflict":
        this.stats.conflicts += 1;
        return this.depose(node, `log/${a.index} holds another entry: stale view, refuses to lead`);
    }
  }

  /** A node's replica applies the next entry: a standby's watch, or a new leader catching up. */
  private watch(node: SimNode, entriesMax: number): void {
    for (let i = 0; i < entriesMax; i++) {
      const index = node.engine.table.appliedIndex + 1;
      const value = this.etcd.entry(index);
      if (!value || index > this.feedable(node)) return;
      this.feed(node, { type: "applied", entry: entryOf(index, value) });
    }
  }

  /** A leader's replica takes the log up to its takeover read; its own entries come with their answers. */
  private feedable(node: SimNode): number {
    return node.term === undefined ? Infinity : node.catchUpTo;
  }

  /** An answer reaches its node only while the term that asked still leads there. */
  private deliverAnswer(): void {
    const a = this.wire.takeAnswer();
    const node = a && this.nodes[a.node];
    if (a && node?.term === a.term) this.feed(node, a.input);
  }

  // ---- answers, clients and time ------------------------------------------------------------

  private clientStep(): void {
    const node = this.leader();
    const input = node && this.clients.next();
    if (node && input) this.feed(node, input);
  }

  private tick(): void {
    this.nowMs += this.rng.int(100);
    for (const node of this.nodes) this.feed(node, { type: "tick" });
  }

  private feed(node: SimNode, input: Input): void {
    this.note(`node ${node.id} in ${describeInput(input)}`);
    this.emit(node, node.engine.handle(input, this.nowMs));
  }

  // ---- the healed phase ---------------------------------------------------------------------

  /** No faults, no new clients: within a bounded number of rounds everything settles (G3). */
  private heal(): void {
    this.healing = true;
    this.wire.releaseAll();
    const settledAfterMs =
      Math.max(this.nowMs, this.clients.deadlineMaxMs) +
      this.cfg.retentionMs +
      this.cfg.clockSkewMsMax +
      this.cfg.phase2Backoff.maxMs;
    for (let round = 1; round <= 400 && this.ok(); round++) {
      if (!this.leader()) this.elect();
      this.drain(
        () => this.txns.length + this.txnAnswers.length > 0,
        () => {
          if (this.txns.length > 0) this.deliverTxn();
          else this.deliverTxnAnswer();
        },
      );
      for (const node of this.nodes)
        this.drain(
          () => node.engine.table.appliedIndex < Math.min(this.etcd.lastIndex, this.feedable(node)),
          () => this.watch(node, 1),
        );
      this.drain(
        () => this.wire.pausedOut > 0,
        () => this.wire.resumePaused(),
      );
      this.drain(
        () => this.wire.callsOut > 0,
        () => this.wire.deliverCall(),
      );
      this.drain(
        () => this.wire.answersOut > 0,
        () => this.deliverAnswer(),
      );
      this.nowMs += 100;
      this.tick();
      this.checks.afterStep(this.nodes.map((n) => n.engine));
      const l = this.leader();
      const quiet =
        l !== undefined &&
        l.queue.length === 0 &&
        !l.inflight &&
        this.txns.length + this.txnAnswers.length === 0 &&
        this.wire.callsOut + this.wire.pausedOut + this.wire.answersOut === 0;
      if (quiet && this.nowMs > settledAfterMs) return;
    }
    if (this.ok()) this.violate("G3", "not quiet after 400 healed rounds");
  }

  /** Runs `fn` while `more()`, at most `healDrainMax` times (a bug must not hang the run). */
  private drain(more: () => boolean, fn: () => void): void {
    for (let i = 0; more() && this.ok(); i++) {
      if (i === healDrainMax) return this.violate("G3", "work keeps coming in the healed phase");
      fn();
    }
  }

  // ---- bookkeeping --------------------------------------------------------------------------

  private violate(rule: string, what: string): void {
    this.violations.push(`${rule}: ${what} (step ${this.step})`);
  }

  private note(what: string): void {
    this.trace.push(`${this.step}@${this.nowMs} ${what}`);
    if (this.trace.length > traceMax) this.trace.shift();
  }
}

function entryOf(index: number, value: LogValue) {
  return { index: index as LogIndex, term: value.term as Term, record: value.record };
}
