/**
 * The cluster simulator's clients (sim-cluster.ts): they begin transactions on whichever node
 * leads, enlist branches, commit (retrying with the same Idempotency-Key after a leader
 * change, so a re-driven `preparing` transaction can be joined) and sometimes abort. Every
 * answer is checked against the log (sim-checks.ts).
 */
import type { Input, Principal, Reply } from "../../../coordinator/core/engine.js";
import type { Xid } from "../../../coordinator/core/ids.js";
import type { Decision } from "../../../coordinator/core/records.js";
import { payloadFor, type FakeParticipant, type Rng } from "./harness.js";
import type { ClusterChecks } from "./sim-checks.js";

const owner: Principal = { id: "svc-a", admin: false };

interface ClientTxn {
  readonly xid: Xid;
  readonly deadlineMs: number;
  /** Branches created for it so far, and enlists tried. */
  branches: number;
  enlists: number;
  /** The first final answer to a commit or abort. */
  answered?: Decision;
}

type Request = { type: "begin" | "enlist" | "commit" | "abort"; xid: Xid };

/** A client call, as the shell hands it to the leader's engine. */
export type ClientInput = Extract<Input, { req: number }>;

export class Clients {
  private readonly txns: ClientTxn[] = [];
  private readonly requests = new Map<number, Request>();
  private nextReq = 1;
  private nextXid = 1;

  constructor(
    private readonly rng: Rng,
    private readonly participants: readonly FakeParticipant[],
    private readonly checks: ClusterChecks,
    private readonly txnsMax: number,
    private readonly violate: (rule: string, what: string) => void,
  ) {}

  get begun(): number {
    return this.txns.length;
  }

  /** The latest deadline of any transaction: the healed phase runs past it. */
  get deadlineMaxMs(): number {
    return Math.max(0, ...this.txns.map((t) => t.deadlineMs));
  }

  /** One client call for the leader, or undefined when there is nothing to do. */
  next(): ClientInput | undefined {
    const open = this.txns.filter(
      (t) => t.answered === undefined && !this.checks.forgotten.has(t.xid),
    );
    if (this.txns.length < this.txnsMax && (open.length === 0 || this.rng.chance(0.15)))
      return this.begin();
    if (open.length === 0) return undefined;
    // Mostly the newest: a transaction then often reaches commit within one term.
    const t = this.rng.chance(0.6) ? (open.at(-1) as ClientTxn) : this.rng.pick(open);
    // One to three branches, then commit (one branch: a one-phase commit when enabled).
    const r = this.rng.next();
    // A transaction a leader change lost refuses enlists: its commit then hears `aborted`.
    const first = t.branches === 0 && t.enlists < 3;
    if (first || (t.branches > 0 && t.branches < 3 && r < 0.35)) return this.enlist(t);
    return this.call(r < 0.93 ? "commit" : "abort", t.xid);
  }

  replied(req: number, reply: Reply): void {
    const r = this.requests.get(req);
    if (!r) return this.violate("reply", `reply to unknown request ${req}`);
    this.requests.delete(req);
    if (r.type === "begin") {
      if (reply.kind === "txn" && reply.created !== false)
        this.txns.push({
          xid: reply.view.xid,
          deadlineMs: reply.view.deadlineMs,
          branches: 0,
          enlists: 0,
        });
      return;
    }
    if (r.type === "enlist" && reply.kind === "branch" && reply.created) {
      const t = this.txns.find((x) => x.xid === r.xid);
      if (t) t.branches += 1;
    }
    if (r.type === "enlist" || reply.kind !== "txn") {
      if (reply.kind === "error" && reply.code === "transaction-committed")
        if (this.checks.decisionOf(r.xid) !== "commit")
          this.violate("G7", `abort of ${r.xid} refused as committed; the log disagrees`);
      return;
    }
    const final = this.checks.stateAnswer(r.xid, reply.view);
    const t = this.txns.find((x) => x.xid === r.xid);
    if (!t || final === undefined) return;
    if (t.answered !== undefined && t.answered !== final)
      this.violate("G5", `${r.xid} answered ${final} after ${t.answered}`);
    t.answered ??= final;
  }

  private begin(): ClientInput {
    const xid = `x${this.nextXid++}` as Xid;
    const req = this.track({ type: "begin", xid });
    const timeoutMs = 300 + this.rng.int(2500);
    const idem = { key: `b-${xid}`, fingerprint: "begin" };
    return { type: "begin", req, principal: owner, xid, timeoutMs, labels: {}, idem };
  }

  private enlist(t: ClientTxn): ClientInput {
    t.enlists += 1;
    const spec = this.rng.pick(this.participants);
    const payload = payloadFor(spec.kind, this.rng, this.rng.chance(0.05));
    const fingerprint = JSON.stringify({ participant: spec.name, payload });
    return {
      type: "enlist",
      req: this.track({ type: "enlist", xid: t.xid }),
      principal: owner,
      xid: t.xid,
      participant: spec.name,
      kind: spec.kind,
      payload,
      payloadBytes: JSON.stringify(payload).length,
      idem: { key: `e-${t.xid}-${this.rng.int(1e9)}`, fingerprint },
    };
  }

  /** Commit keeps one key per transaction: a retry after a leader change joins the first. */
  private call(type: "commit" | "abort", xid: Xid): ClientInput {
    const req = this.track({ type, xid });
    return { type, req, principal: owner, xid, idem: { key: `${type}-${xid}`, fingerprint: type } };
  }

  private track(r: Request): number {
    const req = this.nextReq++;
    this.requests.set(req, r);
    return req;
  }
}
