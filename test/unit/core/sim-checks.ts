/**
 * The cluster simulator's checkers (sim-cluster.ts). They read the etcd model's log and the
 * fake participants, never an engine's table, so a broken table cannot hide its own faults.
 * Checked after every step, or at the moment of the event:
 * - overwrite: a `log/<i>` that landed never changes (G2);
 * - split: a decided transaction has no branch that went the other way (G1/G2);
 * - term: no term sends a participant request after it ended (the term owns its loops);
 * - stale: no request of a term takes effect on a branch after a later term's request took
 *   effect there (a deposed leader's late call is refused by the participant);
 * - G1: commit, rollback and one-phase commit are sent only after the entry that allows them
 *   landed; G7: an answer agrees with the log, and `committed` means committed at every branch;
 * - tables: every node's table holds the log's first decision (G2).
 */
import type { Engine } from "../../../coordinator/core/engine.js";
import type { Xid } from "../../../coordinator/core/ids.js";
import type { BranchSpec, Decision, LogRecord } from "../../../coordinator/core/records.js";
import type { TxnView } from "../../../coordinator/core/view.js";
import {
  describeRecord,
  type CallOutput,
  type FakeParticipant,
  type FakeState,
} from "./harness.js";
import type { EtcdModel, LogValue } from "./sim-etcd.js";

interface ModelTxn {
  branches: readonly BranchSpec[];
  onePhase: boolean;
  decision?: Decision;
  decisionIndex?: number;
}

export class ClusterChecks {
  readonly model = new Map<Xid, ModelTxn>();
  readonly forgotten = new Set<Xid>();
  /** Transactions someone was told are aborted while the log had no decision. */
  private readonly presumedAborted = new Set<Xid>();
  /** Branch id → the latest term whose request changed it. */
  private readonly touched = new Map<string, number>();
  private readonly firstPut = new Map<number, LogValue>();
  private putsSeen = 0;
  private applied = 0;

  constructor(
    private readonly etcd: EtcdModel,
    private readonly participants: readonly FakeParticipant[],
    private readonly violate: (rule: string, what: string) => void,
  ) {}

  /** After every step: the log, then every branch and every node's table against it. */
  afterStep(engines: readonly Engine[]): void {
    this.checkPuts();
    this.applyLanded();
    this.checkSplits();
    for (const [i, engine] of engines.entries()) this.checkTable(i, engine);
  }

  /** The decision the log holds now. */
  decisionOf(xid: Xid): Decision | undefined {
    this.applyLanded();
    return this.model.get(xid)?.decision;
  }

  /** A node sends a participant request in `term`; `over` says the term had ended. */
  sent(call: CallOutput, term: number, over: boolean): void {
    const id = call.branch.branchId;
    if (over) this.violate("term", `term ${term} sent ${call.type} ${id} after it ended`);
    this.applyLanded();
    const m = this.model.get(call.xid);
    const d = m?.decision;
    if (call.type === "commit" && d !== "commit")
      this.violate("G1", `commit of ${id} sent while the log says ${d ?? "undecided"}`);
    if (call.type === "rollback" && d !== "abort")
      this.violate("G1", `rollback of ${id} sent while the log says ${d ?? "undecided"}`);
    if (call.type === "commit-one-phase" && (!m?.onePhase || d !== undefined))
      this.violate("G1", `one-phase commit of ${id} without an undecided one-phase entry`);
  }

  /**
   * A request of `term` took its effect (or none) on its branch: it may change the branch only
   * if no later term's request changed it first. Says whether one had.
   */
  executed(call: CallOutput, term: number, before: FakeState, after: FakeState): boolean {
    const id = call.branch.branchId;
    const latest = this.touched.get(id) ?? 0;
    if (before === after) return term < latest;
    if (term < latest)
      this.violate(
        "stale",
        `term ${term}'s ${call.type} moved ${id} ${before}→${after} after term ${latest}'s request had`,
      );
    this.touched.set(id, Math.max(latest, term));
    return term < latest;
  }

  /** G7: a state told to a client agrees with the log; `committed` is committed everywhere. */
  stateAnswer(xid: Xid, view: TxnView): Decision | undefined {
    const d = this.decisionOf(xid);
    const state = view.state;
    if ((state === "committed" || state === "committing") && d !== "commit")
      this.violate("G7", `told ${xid} ${state}, the log says ${d ?? "undecided"}`);
    if (state === "committed") {
      for (const b of this.model.get(xid)?.branches ?? []) {
        const s = this.stateOf(b);
        if (s !== "committed") this.violate("G7", `told ${xid} committed, ${b.branchId} is ${s}`);
      }
    }
    if (state !== "aborted" && state !== "aborting")
      return state === "committed" || state === "committing" ? "commit" : undefined;
    if (d === "commit") this.violate("G7", `told ${xid} ${state}, the log says commit`);
    else if (d === undefined) this.presumedAborted.add(xid);
    return "abort";
  }

  /** After the healed phase: everything decided, every branch where its decision says. */
  final(): void {
    for (const [xid, m] of this.model) {
      if (m.decision === undefined) {
        this.violate("G3", `${xid} is still undecided after the healed phase`);
        continue;
      }
      for (const b of m.branches) {
        const s = this.stateOf(b);
        const ok = m.decision === "commit" ? s === "committed" : s !== "prepared";
        if (!ok) this.violate("G3", `${b.branchId} is ${s}, decision ${m.decision}`);
      }
    }
    for (const p of this.participants) {
      for (const [id, b] of p.branches) {
        const listed = this.model.get(b.xid)?.branches.some((s) => s.branchId === id) ?? false;
        if (!listed && (b.state === "prepared" || b.state === "committed"))
          this.violate("G3", `${id} is ${b.state} but the log does not list it`);
        if (b.works > 1) this.violate("G5", `${id}'s work was done ${b.works} times`);
      }
    }
  }

  private stateOf(b: BranchSpec): FakeState {
    const p = this.participants.find((q) => q.name === b.participant);
    return p?.branches.get(b.branchId)?.state ?? "none";
  }

  private checkPuts(): void {
    const text = (v: LogValue) => `term ${v.term}'s ${describeRecord(v.record)}`;
    for (const { index, value } of this.etcd.puts.slice(this.putsSeen)) {
      const first = this.firstPut.get(index);
      if (first === undefined) this.firstPut.set(index, value);
      else if (first.bytes !== value.bytes)
        this.violate("overwrite", `log/${index}: ${text(first)} overwritten by ${text(value)}`);
    }
    this.putsSeen = this.etcd.puts.length;
  }

  private applyLanded(): void {
    for (let i = this.applied + 1; i <= this.etcd.lastIndex; i++) {
      const value = this.etcd.entry(i);
      if (!value) return this.violate("gap", `log/${i} is missing below ${this.etcd.lastIndex}`);
      this.apply(value.record, i);
      this.applied = i;
    }
  }

  private apply(r: LogRecord, index: number): void {
    switch (r.type) {
      case "preparing":
        if (!this.model.has(r.txn.xid))
          this.model.set(r.txn.xid, { branches: r.branches, onePhase: r.onePhase });
        return;
      case "decide": {
        const m = this.model.get(r.xid) ?? { branches: r.branches ?? [], onePhase: false };
        this.model.set(r.xid, m);
        if (m.decision !== undefined) return; // compare-and-set: the first holds
        m.decision = r.decision;
        m.decisionIndex = index;
        if (r.decision === "commit" && this.presumedAborted.has(r.xid))
          this.violate("G7", `${r.xid} committed after a client was told aborted`);
        return;
      }
      case "forget":
        for (const xid of r.xids) this.forgotten.add(xid);
        return;
      case "acks":
      case "recover":
        return;
    }
  }

  /** No split outcome: a decided transaction's branches never went the other way. */
  private checkSplits(): void {
    for (const [xid, m] of this.model) {
      if (m.decision === undefined) continue;
      for (const b of m.branches) {
        const s = this.stateOf(b);
        const other = m.decision === "commit" ? s === "rolled-back" : s === "committed";
        if (other) this.violate("split", `${xid} decided ${m.decision}, ${b.branchId} is ${s}`);
      }
    }
  }

  private checkTable(node: number, engine: Engine): void {
    const appliedIndex = engine.table.appliedIndex;
    for (const t of engine.table.all()) {
      const m = this.model.get(t.header.xid);
      if (m?.decisionIndex === undefined || m.decisionIndex > appliedIndex) continue;
      if (t.decision?.decision !== m.decision || t.decision?.index !== m.decisionIndex)
        this.violate(
          "G2",
          `node ${node}'s table says ${t.header.xid} is ${t.decision?.decision ?? "undecided"} (#${t.decision?.index}), the log ${m.decision} (#${m.decisionIndex})`,
        );
    }
  }
}
