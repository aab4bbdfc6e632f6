/**
 * Client histories of the cluster fault tests, for the per-transaction linearizability check
 * (linearizability.ts): every begin, commit, abort and status call a `RecordingClient` makes,
 * with its call and return times on the monotonic clock and what it was told. A call that
 * never answered, or answered something that does not say the outcome, is recorded with an
 * unknown output (it may have taken effect at any time after its call, or never); a status
 * read without an answer constrains nothing and is left out.
 */
import {
  TransactionAbortedError,
  VerdictClient,
  VerdictError,
  type TransactionState,
  type TransactionView,
  type VerdictClientOptions,
} from "../../client/index.js";

export type OpKind = "begin" | "commit" | "rollback" | "status";
export type OpOutput = "ok" | "active" | "preparing" | "committed" | "aborted" | "unknown";

export interface HistoryOp {
  readonly client: number;
  readonly xid: string;
  readonly kind: OpKind;
  readonly output: OpOutput;
  /** Nanoseconds on the monotonic clock. */
  readonly call: number;
  /** Absent: the call never answered (its output is `unknown`). */
  readonly return?: number;
}

/** What a status answer says, as the checker's stages. */
const stageOf: Record<TransactionState, OpOutput> = {
  active: "active",
  preparing: "preparing",
  prepared: "preparing",
  committing: "committed",
  committed: "committed",
  aborting: "aborted",
  aborted: "aborted",
};

const nowNs = (): number => Number(process.hrtime.bigint());

/** Transactions `recentXids` remembers. */
const recentMax = 40;

export class History {
  private readonly recorded: HistoryOp[] = [];
  private readonly recent: string[] = [];
  private dropped = 0;

  /** `opsMax` bounds the memory of a long soak; calls past it are counted, not kept. */
  constructor(private readonly opsMax: number) {}

  get ops(): readonly HistoryOp[] {
    return this.recorded;
  }

  /** Calls not kept because the history was full (the check covers the rest). */
  get droppedOps(): number {
    return this.dropped;
  }

  /** The xids begun last (at most 40), for readers that ask about transactions in flight. */
  get recentXids(): readonly string[] {
    return this.recent;
  }

  add(op: HistoryOp): void {
    if (op.kind === "begin") {
      this.recent.push(op.xid);
      if (this.recent.length > recentMax) this.recent.shift();
    }
    if (this.recorded.length >= this.opsMax) this.dropped += 1;
    else this.recorded.push(op);
  }

  /** Runs one call and records it with the output `told` derives from its answer or error. */
  async time<T>(
    client: number,
    kind: OpKind,
    call: () => Promise<T>,
    told: (answer: { value: T } | { error: unknown }) => { xid: string; output: OpOutput } | null,
  ): Promise<T> {
    const start = nowNs();
    let answer: { value: T } | { error: unknown };
    try {
      answer = { value: await call() };
    } catch (error) {
      answer = { error };
    }
    const end = nowNs();
    const got = told(answer);
    if (got !== null) {
      this.add(
        got.output === "unknown"
          ? { client, kind, xid: got.xid, output: "unknown", call: start }
          : { client, kind, xid: got.xid, output: got.output, call: start, return: end },
      );
    }
    if ("error" in answer) throw answer.error;
    return answer.value;
  }
}

/** The decision an abort or commit error tells, else unknown. */
function decisionOf(error: unknown): OpOutput {
  if (error instanceof TransactionAbortedError) return "aborted";
  if (error instanceof VerdictError && error.code === "transaction-committed") return "committed";
  return "unknown";
}

/** A VerdictClient that records its decision calls and status reads in a History. */
export class RecordingClient extends VerdictClient {
  constructor(
    options: VerdictClientOptions,
    private readonly history: History,
    private readonly clientId: number,
  ) {
    super(options);
  }

  override begin(...args: Parameters<VerdictClient["begin"]>): Promise<TransactionView> {
    return this.history.time(
      this.clientId,
      "begin",
      () => super.begin(...args),
      (a) => ("value" in a ? { xid: a.value.xid, output: "ok" } : null),
    );
  }

  override commit(xid: string): Promise<TransactionView> {
    return this.decision("commit", xid, () => super.commit(xid));
  }

  override abort(xid: string): Promise<TransactionView> {
    return this.decision("rollback", xid, () => super.abort(xid));
  }

  override status(xid: string): Promise<TransactionView> {
    return this.history.time(
      this.clientId,
      "status",
      () => super.status(xid),
      (a) => {
        if ("value" in a) return { xid, output: stageOf[a.value.state] };
        // 409 aborted (leader-changed): the transaction was lost with the leader that began it.
        return a.error instanceof TransactionAbortedError ? { xid, output: "aborted" } : null;
      },
    );
  }

  private decision(
    kind: "commit" | "rollback",
    xid: string,
    call: () => Promise<TransactionView>,
  ): Promise<TransactionView> {
    return this.history.time(this.clientId, kind, call, (a) => ({
      xid,
      output: "value" in a ? stageOf[a.value.state] : decisionOf(a.error),
    }));
  }
}
