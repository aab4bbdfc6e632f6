/**
 * The wire between the cluster simulator's nodes and its participants (sim-cluster.ts): calls
 * on their way, calls paused inside a PostgreSQL participant (sim-postgres.ts), and answers on
 * their way back. A call reaches its participant in any order, possibly long after its sender
 * was deposed; it can fail (not executed) or lose its answer (the shell hears a timeout).
 * Every call that reaches a participant is checked there (sim-checks.ts `executed`).
 */
import type { Input } from "../../../coordinator/core/engine.js";
import { answerOf, type CallOutput, type CallResult, type Rng } from "./harness.js";
import type { ClusterChecks } from "./sim-checks.js";
import type { MarkerParticipant } from "./sim-postgres.js";

export interface WireStats {
  /** Requests of an ended term that reached a participant. */
  lateCalls: number;
  /** Of those, the ones that reached a branch after a later term's request changed it. */
  lateAfterSuccessor: number;
  /** PostgreSQL prepares and one-phase commits paused while holding the marker key. */
  paused: number;
}

export interface WireContext {
  readonly rng: Rng;
  readonly participants: readonly MarkerParticipant[];
  readonly checks: ClusterChecks;
  readonly stats: WireStats;
  readonly note: (what: string) => void;
  readonly ended: (term: number) => boolean;
  /** The current step, and whether the healed phase runs (no faults, nothing held). */
  readonly clock: () => { step: number; healing: boolean };
}

interface WireCall {
  readonly call: CallOutput;
  readonly node: number;
  readonly term: number;
  heldUntilStep: number;
}

export interface WireAnswer {
  readonly node: number;
  readonly term: number;
  readonly input: Input;
}

export class Wire {
  private calls: WireCall[] = [];
  private paused: WireCall[] = [];
  private answers: WireAnswer[] = [];

  constructor(private readonly ctx: WireContext) {}

  get callsOut(): number {
    return this.calls.length;
  }

  get pausedOut(): number {
    return this.paused.length;
  }

  get answersOut(): number {
    return this.answers.length;
  }

  send(call: CallOutput, node: number, term: number): void {
    this.calls.push({ call, node, term, heldUntilStep: 0 });
  }

  /** `term` ended: most of its calls on the wire arrive only after the next leader acted. */
  holdTerm(term: number): void {
    const { rng } = this.ctx;
    const { step, healing } = this.ctx.clock();
    for (const c of this.calls)
      if (c.term === term && !healing && rng.chance(0.7)) c.heldUntilStep = step + 10 + rng.int(80);
  }

  releaseAll(): void {
    for (const c of this.calls) c.heldUntilStep = 0;
  }

  deliverCall(): void {
    const { rng } = this.ctx;
    const { step, healing } = this.ctx.clock();
    const ready = this.calls.filter((c) => c.heldUntilStep <= step);
    const c = ready[rng.int(ready.length)];
    if (!c) return;
    this.calls = this.calls.filter((x) => x !== c);
    const p = this.participant(c.call);
    const transient = !healing && rng.chance(0.08);
    const what = `${c.call.type} ${c.call.branch.branchId} (term ${c.term})`;
    if (!transient && !healing && rng.chance(0.15) && p.claim(c.call)) {
      this.ctx.note(`call ${what} pauses holding the marker key`);
      this.ctx.stats.paused += 1;
      c.heldUntilStep = step + 1 + rng.int(60);
      this.paused.push(c);
      return;
    }
    this.ctx.note(`call ${what}${transient ? " fails" : ""}`);
    this.answer(c, transient ? undefined : this.execute(c, () => p.run(c.call)));
  }

  /** A paused call resumes: PREPARE TRANSACTION or COMMIT. */
  resumePaused(): void {
    const { step, healing } = this.ctx.clock();
    const ready = this.paused.filter((c) => c.heldUntilStep <= step || healing);
    const c = ready[this.ctx.rng.int(ready.length)];
    if (!c) return;
    this.paused = this.paused.filter((x) => x !== c);
    this.ctx.note(`call ${c.call.type} ${c.call.branch.branchId} (term ${c.term}) resumes`);
    this.answer(
      c,
      this.execute(c, () => this.participant(c.call).finish(c.call)),
    );
  }

  /** The next answer to reach its node, in any order. */
  takeAnswer(): WireAnswer | undefined {
    return this.answers.splice(this.ctx.rng.int(this.answers.length), 1)[0];
  }

  /** The shell hears the result; a lost answer reaches it as a timeout, like an error. */
  private answer(c: WireCall, result: CallResult | undefined): void {
    const lost = !this.ctx.clock().healing && this.ctx.rng.chance(0.05);
    const input = answerOf(c.call, lost ? undefined : result);
    this.answers.push({ node: c.node, term: c.term, input });
  }

  private participant(call: CallOutput): MarkerParticipant {
    const p = this.ctx.participants.find((q) => q.name === call.branch.participant);
    if (!p) throw new Error(`no participant ${call.branch.participant}`);
    return p;
  }

  private execute(c: WireCall, run: () => CallResult | undefined): CallResult | undefined {
    const p = this.participant(c.call);
    const { stats, checks } = this.ctx;
    if (this.ctx.ended(c.term)) stats.lateCalls += 1;
    const stateNow = () => p.branches.get(c.call.branch.branchId)?.state ?? "none";
    const before = stateNow();
    const result = run();
    if (checks.executed(c.call, c.term, before, stateNow())) stats.lateAfterSuccessor += 1;
    return result;
  }
}
