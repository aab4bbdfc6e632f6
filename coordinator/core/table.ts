/**
 * The transaction table: the state machine that the decision log is replayed into.
 * `apply` must be deterministic — every node applies the same entries in the same order
 * and reaches the same table — so it reads nothing but its arguments.
 */
import type {
  Ack,
  BranchSpec,
  Decision,
  DecisionCode,
  LogRecord,
  LoggedKey,
  TxnHeader,
} from "./records.js";
import { assertNever, invariant } from "./assert.js";
import type { LogIndex, Term, Xid } from "./ids.js";
import { isFinished, type TxnState } from "./txn.js";
import { releaseWork, workNeeded } from "./payload.js";

export type Heuristic = "heuristic-commit" | "heuristic-rollback" | "heuristic-mixed";

export type HistoryKind =
  "preparing" | "decision" | "acknowledge" | "heuristic" | "recovery" | "operator-resolution";

export interface HistoryItem {
  readonly index: LogIndex;
  readonly term: Term;
  readonly atMs: number;
  readonly kind: HistoryKind;
  readonly what: string;
  /** The operator who did it by hand. */
  readonly principal?: string;
}

export interface DurableTxn {
  readonly header: TxnHeader;
  /** Grows only when recovery finds a branch the log did not know. */
  branches: readonly BranchSpec[];
  readonly onePhase: boolean;
  /** Its `preparing` came from the prepare endpoint (absent in older snapshots: false). */
  readonly prepareOnly?: boolean;
  /** Idempotency keys of the client calls its records were written for. */
  keys?: readonly TimedKey[];
  decision?: {
    readonly decision: Decision;
    readonly code: DecisionCode;
    readonly reason: string;
    readonly branch?: number;
    readonly index: LogIndex;
    readonly term: Term;
    readonly atMs: number;
    /** Branch number → its yes vote's evidence, handed to the participant in phase 2. */
    readonly evidence?: Readonly<Record<string, string>>;
  };
  /** Branch number → how phase 2 ended on it. */
  readonly acks: Map<number, Ack>;
  readonly history: HistoryItem[];
}

/** A logged key with the time of the record that carried it (its age counts from there). */
export type TimedKey = LoggedKey & { readonly atMs: number };

export interface Entry {
  readonly index: LogIndex;
  readonly term: Term;
  readonly record: LogRecord;
}

/** What applying a `decide` did: the decision that holds now, and whether this entry made it. */
export interface ApplyResult {
  readonly xid?: Xid;
  readonly won?: boolean;
}

/** Durable state of a transaction as the log tells it. */
export function durableState(t: DurableTxn): TxnState {
  if (!t.decision) return "preparing";
  const done = t.branches.every((b) => t.acks.has(b.n));
  if (t.decision.decision === "commit") return done ? "committed" : "committing";
  return done ? "aborted" : "aborting";
}

/** Heuristic outcome of a transaction, from its acknowledgements, if any branch went its own way. */
export function heuristicOf(t: DurableTxn): Heuristic | undefined {
  if (!t.decision) return undefined;
  const outcomes = [...t.acks.values()].map((a) => a.outcome);
  const against = t.decision.decision === "commit" ? "heuristic-rollback" : "heuristic-commit";
  const n = outcomes.filter((o) => o === against).length;
  if (n === 0) return undefined;
  return n === t.branches.length ? against : "heuristic-mixed";
}

/**
 * Drops the work its branches no longer need (payload.ts `workNeeded`): decided transactions
 * kept for retention hold no work, so the table and its snapshots grow with work in flight.
 */
function releaseUnneeded(t: DurableTxn): void {
  const decision = t.decision?.decision;
  if (decision === undefined) return;
  t.branches = t.branches.map((b) =>
    workNeeded(b.kind, decision, t.acks.has(b.n)) ? b : releaseWork(b),
  );
}

function addKeys(t: DurableTxn, r: { keys?: readonly LoggedKey[]; atMs: number }): void {
  if (!r.keys?.length) return;
  t.keys = [...(t.keys ?? []), ...r.keys.map((k) => ({ ...k, atMs: r.atMs }))];
}

export class TxnTable {
  private readonly txns = new Map<Xid, DurableTxn>();
  private lastApplied = 0;
  /**
   * The largest begin time any `forget` record forgot (0: nothing forgotten yet). An xid the
   * table does not know that began at or before it may have been forgotten: nobody can
   * tell its outcome; one that began after it never reached `preparing`: presumed aborted.
   * From the log alone (no clock), so every replica answers alike. Undefined only after
   * restoring a snapshot taken before the watermark existed: unknown.
   */
  private forgottenBeganAtMsMax: number | undefined = 0;

  get(xid: Xid): DurableTxn | undefined {
    return this.txns.get(xid);
  }

  all(): IterableIterator<DurableTxn> {
    return this.txns.values();
  }

  get size(): number {
    return this.txns.size;
  }

  get forgetWatermarkMs(): number | undefined {
    return this.forgottenBeganAtMsMax;
  }

  /**
   * Whether an xid this table does not know, begun at `beganAtMs`, may have been finished
   * and forgotten (its outcome untellable) rather than lost before `preparing`. Without a
   * watermark (an old snapshot), the retention time stands in for it.
   */
  mayHaveForgotten(beganAtMs: number, nowMs: number, retentionMs: number): boolean {
    const watermarkMs = this.forgottenBeganAtMsMax;
    return watermarkMs === undefined ? nowMs - beganAtMs >= retentionMs : beganAtMs <= watermarkMs;
  }

  get appliedIndex(): number {
    return this.lastApplied;
  }

  apply(entry: Entry): ApplyResult {
    invariant(
      entry.index > this.lastApplied,
      `entry ${entry.index} applied after ${this.lastApplied}`,
    );
    this.lastApplied = entry.index;
    const r = entry.record;
    const operator = "operator" in r ? r.operator : undefined;
    const note = (t: DurableTxn, kind: HistoryKind, what: string): void => {
      t.history.push({
        index: entry.index,
        term: entry.term,
        atMs: r.atMs,
        // An operator's reason is already in the decision's reason or the ack's detail.
        kind: operator ? "operator-resolution" : kind,
        what,
        ...(operator ? { principal: operator.id } : {}),
      });
    };
    switch (r.type) {
      case "preparing": {
        // A retried commit after a restart may write `preparing` again: the first one holds.
        const existing = this.txns.get(r.txn.xid);
        if (existing) {
          note(existing, "preparing", "preparing (repeat)");
          addKeys(existing, r);
          return { xid: r.txn.xid };
        }
        const t: DurableTxn = {
          header: r.txn,
          branches: r.branches,
          onePhase: r.onePhase,
          ...(r.prepareOnly ? { prepareOnly: true } : {}),
          acks: new Map(),
          history: [],
        };
        addKeys(t, r);
        this.txns.set(r.txn.xid, t);
        note(
          t,
          "preparing",
          `preparing ${r.branches.length} branch(es)${r.onePhase ? ", one-phase" : ""}`,
        );
        return { xid: r.txn.xid };
      }
      case "decide": {
        let t = this.txns.get(r.xid);
        if (!t) {
          invariant(r.txn !== undefined, `decide for unknown ${r.xid} carries no header`);
          t = {
            header: r.txn,
            branches: r.branches ?? [],
            onePhase: false,
            acks: new Map(),
            history: [],
          };
          this.txns.set(r.xid, t);
        }
        addKeys(t, r);
        if (t.decision) {
          note(t, "decision", `${r.decision} (${r.reason}) lost to ${t.decision.decision}`);
          return { xid: r.xid, won: false };
        }
        t.decision = {
          decision: r.decision,
          code: r.code,
          reason: r.reason,
          ...(r.branch === undefined ? {} : { branch: r.branch }),
          index: entry.index,
          term: entry.term,
          atMs: r.atMs,
          ...(r.evidence === undefined ? {} : { evidence: r.evidence }),
        };
        note(t, "decision", `decided ${r.decision}: ${r.reason}`);
        releaseUnneeded(t);
        for (const a of r.acks ?? []) this.ack(t, a, note);
        return { xid: r.xid, won: true };
      }
      case "acks":
        for (const a of r.acks) {
          const t = this.txns.get(a.xid);
          if (t) this.ack(t, a, note);
        }
        return {};
      case "forget":
        // One that recovery reopened after the forget was proposed stays until it finishes.
        for (const xid of r.xids) {
          const t = this.txns.get(xid);
          if (t && isFinished(durableState(t))) {
            this.txns.delete(xid);
            this.raiseWatermark(t.header.beganAtMs); // also for records without beganAtMsMax
          }
        }
        this.raiseWatermark(r.beganAtMsMax ?? 0);
        return {};
      case "recover":
        return this.recover(entry, r, note);
      default:
        return assertNever(r, "log record");
    }
  }

  private recover(
    entry: Entry,
    r: Extract<LogRecord, { type: "recover" }>,
    note: (t: DurableTxn, kind: HistoryKind, what: string) => void,
  ): ApplyResult {
    let t = this.txns.get(r.xid);
    if (!t && r.txn) {
      t = {
        header: r.txn,
        branches: [],
        onePhase: false,
        decision: {
          decision: "abort",
          code: "presumed-abort",
          reason: r.reason,
          index: entry.index,
          term: entry.term,
          atMs: r.atMs,
        },
        acks: new Map(),
        history: [],
      };
      this.txns.set(r.xid, t);
    }
    // Only a decided transaction has branches to drive; an undecided one is still living.
    if (!t?.decision) return { xid: r.xid };
    const branches = [...t.branches];
    for (const b of r.branches) {
      t.acks.delete(b.n);
      if (!branches.some((x) => x.n === b.n)) branches.push(b);
    }
    t.branches = branches.sort((a, b) => a.n - b.n);
    releaseUnneeded(t);
    const names = r.branches.map((b) => `${b.n} (${b.participant})`).join(", ");
    note(t, "recovery", `found prepared: branch ${names}; ${t.decision.decision}: ${r.reason}`);
    return { xid: r.xid };
  }

  private ack(
    t: DurableTxn,
    a: Ack,
    note: (t: DurableTxn, kind: HistoryKind, what: string) => void,
  ): void {
    invariant(t.decision !== undefined, `ack before decision for ${t.header.xid}`);
    if (t.acks.has(a.n)) return;
    t.acks.set(a.n, a);
    releaseUnneeded(t);
    const kind = a.outcome.startsWith("heuristic") ? "heuristic" : "acknowledge";
    note(t, kind, `branch ${a.n} ${a.outcome}${a.detail ? `: ${a.detail}` : ""}`);
  }

  private raiseWatermark(beganAtMs: number): void {
    if (this.forgottenBeganAtMsMax !== undefined)
      this.forgottenBeganAtMsMax = Math.max(this.forgottenBeganAtMsMax, beganAtMs);
  }

  /** A snapshot of the table, for log compaction; `restore` reads it back. */
  snapshot(): Uint8Array {
    const txns = [...this.txns.values()].map((t) => ({ ...t, acks: [...t.acks.values()] }));
    const forgetWatermarkMs = this.forgottenBeganAtMsMax;
    return new TextEncoder().encode(
      JSON.stringify({ v: 1, lastApplied: this.lastApplied, forgetWatermarkMs, txns }),
    );
  }

  static restore(data: Uint8Array): TxnTable {
    const parsed = JSON.parse(new TextDecoder().decode(data)) as {
      v: number;
      lastApplied: number;
      /** Absent in snapshots taken before the watermark existed. */
      forgetWatermarkMs?: number;
      txns: (Omit<DurableTxn, "acks"> & { acks: Ack[] })[];
    };
    invariant(parsed.v === 1, `unknown snapshot format ${parsed.v}`);
    const table = new TxnTable();
    table.lastApplied = parsed.lastApplied;
    table.forgottenBeganAtMsMax = parsed.forgetWatermarkMs;
    for (const t of parsed.txns) {
      const txn = { ...t, acks: new Map(t.acks.map((a) => [a.n, a])) };
      releaseUnneeded(txn); // a snapshot written before work was released
      table.txns.set(t.header.xid, txn);
    }
    return table;
  }
}
