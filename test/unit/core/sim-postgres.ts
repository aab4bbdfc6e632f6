/**
 * The cluster simulator's participants (sim-cluster.ts): harness.ts's fakes, plus the window a
 * PostgreSQL branch has between claiming its marker key and finishing. A prepare (or one-phase
 * commit) inserts the marker row first (`mark`, under a short lock_timeout), runs the branch's
 * statements, then PREPARE TRANSACTION (or COMMIT); a coordinator paused in between holds the
 * key with an uncommitted row. Meanwhile, as participants/postgres does and docs/architecture.md
 * §4 requires:
 * - another prepare's marker insert waits for the key, times out, reads the branch (not
 *   prepared), backs off and tries again until its deadline: modelled as its vote then, no;
 * - the one-phase check's fence insert waits out the inserter, times out: unknown, asked again;
 * - a rollback claims the same key, times out, and (not prepared) fails to be retried —
 *   unless `rollbackClaimsKey` is false: then it writes only a tombstone, finds nothing
 *   prepared and answers done, and the paused PREPARE still succeeds afterwards.
 * Redis and Kafka branches run atomically (Redis's prepare is one script).
 */
import type { ParticipantKind } from "../../../participants/participant.js";
import { FakeParticipant, type CallOutput, type CallResult } from "./harness.js";

export class MarkerParticipant extends FakeParticipant {
  /** Branches whose marker key a paused prepare or one-phase commit holds. */
  private readonly claimed = new Set<string>();

  constructor(
    name: string,
    kind: ParticipantKind,
    violation: (what: string) => void,
    private readonly rollbackClaimsKey = true,
  ) {
    super(name, kind, violation);
  }

  /** Runs a call up to its marker insert and pauses there; false if it cannot pause. */
  claim(call: CallOutput): boolean {
    const id = call.branch.branchId;
    if (this.kind !== "postgres" || this.claimed.has(id)) return false;
    if (call.type !== "prepare" && call.type !== "commit-one-phase") return false;
    if ((this.branches.get(id)?.state ?? "none") !== "none") return false;
    if (JSON.stringify(call.branch.payload).includes("FAIL")) return false;
    this.claimed.add(id);
    return true;
  }

  /** The paused call resumes: PREPARE TRANSACTION or COMMIT, whatever happened meanwhile. */
  finish(call: CallOutput): CallResult {
    const id = call.branch.branchId;
    this.claimed.delete(id);
    const b = this.branches.get(id);
    // Only a tombstone was written meanwhile: `mark` had already checked it.
    if (b?.state === "rolled-back") b.state = "none";
    return super.execute(call);
  }

  /** One call; `undefined` when it failed (a lock timeout on a claimed key). */
  run(call: CallOutput): CallResult | undefined {
    const id = call.branch.branchId;
    if (!this.claimed.has(id)) return this.execute(call);
    switch (call.type) {
      case "prepare":
        return { type: "vote", vote: { vote: "no", reason: "statement-failed", detail: "key" } };
      case "commit-one-phase":
        return { type: "one-phase", committed: false };
      case "check-one-phase":
        return undefined;
      case "rollback":
        if (this.rollbackClaimsKey) return undefined;
        return this.execute(call);
      case "commit":
        this.violation(`commit of ${id} while a prepare holds its key`);
        return undefined;
    }
  }
}
