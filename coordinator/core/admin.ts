/**
 * The read model: what clients and operators see of transactions — the applied table, with
 * what only the leader knows (live transactions, votes, phase-2 attempts) laid over it.
 */
import { inFlight } from "./client-begin.js";
import type { Xid } from "./ids.js";
import type { AdminFacts } from "./inputs.js";
import type { Leader } from "./leader.js";
import { stateOf } from "./phase.js";
import type { Replica } from "./replica.js";
import type { TxnState } from "./txn.js";
import { viewOfDurable, type TxnView } from "./view.js";

/** Decided but unfinished, or prepared and waiting for its decision. */
export function isInDoubt(state: TxnState): boolean {
  return state === "committing" || state === "aborting" || state === "prepared";
}

export class ReadModel {
  constructor(
    private readonly replicaOf: () => Replica,
    private readonly leader: () => Leader | undefined,
  ) {}

  view(xid: Xid): TxnView | undefined {
    const l = this.leader();
    if (l) return l.view(xid);
    const t = this.replicaOf().table.get(xid);
    return t && viewOfDurable(t);
  }

  principalOf(xid: Xid): string | undefined {
    const live = this.leader()?.live.get(xid);
    return live?.header.principal ?? this.replicaOf().table.get(xid)?.header.principal;
  }

  /** What an operator sees of one transaction: its view, owner, history and retry counts. */
  facts(xid: Xid): AdminFacts | undefined {
    const view = this.view(xid);
    const live = this.leader()?.live.get(xid);
    const t = this.replicaOf().table.get(xid);
    const header = live?.header ?? t?.header;
    if (!view || !header) return undefined;
    const attempts = new Map<number, number>();
    const lastErrors = new Map<number, string>();
    if (live?.phase.kind === "phase2") {
      for (const [n, track] of live.phase.tracks) {
        attempts.set(n, track.attempt);
        if (track.lastError !== undefined) lastErrors.set(n, track.lastError);
      }
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
  list(): AdminFacts[] {
    const xids = new Set<Xid>([
      ...(this.leader()?.live.keys() ?? []),
      ...[...this.replicaOf().table.all()].map((t) => t.header.xid),
    ]);
    const all: AdminFacts[] = [];
    for (const xid of xids) {
      const f = this.facts(xid);
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
    for (const live of this.leader()?.live.values() ?? []) {
      if (isInDoubt(stateOf(live.phase))) n += 1;
    }
    return n;
  }

  /** When the oldest transaction now in doubt began (undefined: none in doubt). */
  oldestInDoubtBeganAtMs(): number | undefined {
    let oldest: number | undefined;
    for (const live of this.leader()?.live.values() ?? []) {
      if (!isInDoubt(stateOf(live.phase))) continue;
      const began = live.header.beganAtMs;
      if (oldest === undefined || began < oldest) oldest = began;
    }
    return oldest;
  }

  inFlight(): number {
    const l = this.leader();
    return l ? inFlight(l) : this.replicaOf().undecided.size;
  }

  /**
   * Transactions a shutdown should wait for: everything this node drives, except those
   * prepared and waiting for their client — the log holds them, the next start resumes them.
   */
  drainPending(): number {
    let n = 0;
    for (const live of this.leader()?.live.values() ?? []) {
      if (stateOf(live.phase) !== "prepared") n += 1;
    }
    return n;
  }
}
