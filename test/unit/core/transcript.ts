/**
 * A small text DSL that drives the pure engine one input at a time and prints what it does,
 * for annotated scenario transcripts (the etcd-io/raft `testdata/*.txt` shape).
 *
 * A transcript is a sequence of blocks. Lines starting with `#` are commentary, kept as is.
 * A block is one command line, a `----` line, and the expected output up to a blank line.
 *
 * Commands (xids and participants are free names; a participant's kind comes from its prefix
 * `pg`, `redis` or `kafka`):
 *   begin <xid> [timeout=<ms>] [as=<principal>] [key=<k>]
 *   enlist <xid> <participant> [work=<tag>] [key=<k>] [as=<principal>]   (work `FAIL` votes no)
 *   prepare|commit|abort <xid> [as=<principal>] [key=<k>]   (a key's body is the call and xid)
 *   resolve <xid> commit|abort|settle|forget    an operator's resolution (as=ops)
 *   recover [from=<i>] <participant> <branchId>...   a recovery scan, begun when the table
 *                                had applied entry i (by default: now), lists these branches
 *   apply [<n>]                  the first n pending appends (all by default) become durable
 *   fail-append <i> [landed]     pending append i fails: dropped, or `landed` anyway
 *   vote <xid> <n> yes|no|failed [evidence=<e>]   the prepare of branch n answers (`failed`:
 *                                the call failed, with its typed error)
 *   done <xid> <n> [outcome]     phase 2 of branch n answers (done, already-done, heuristic-*)
 *   fail <xid> <n>               phase 2 of branch n fails
 *   one-phase <xid> committed|aborted|unknown
 *   tick [+<ms>]                 the clock moves on, then a tick
 *   crash                        unsynced appends are lost; a new engine replays and leads
 *   step-down [lost]             the engine loses leadership (`lost`: pending appends with it)
 *   lead                         the same engine leads again, in a new term
 *   become-leader term=<n>       the same engine leads in term n; the log holds the pending
 *                                appends too, so it catches up until `apply` applies them
 *   keys                         how many idempotency keys the engine holds
 *   in-flight                    how many transactions count against inFlightTransactionsMax
 *   prepare-order parallel|ordered   first command only: the engine's `prepareOrder`
 *                                (parallel by default), kept across crashes
 *   view <xid>                   the shell's own look at the table (no input, never refused)
 *   work <xid>                   the work kind each branch holds in the table, and in the
 *                                last participant call sent for it (`released`: none kept)
 *   read <xid> [as=<principal>]  a client's read of the transaction, an input like the calls
 *   facts <xid>                  an operator's facts about it (as=ops)
 *   list [in-doubt=true|false] [state=<s>] [limit=<n>] [after=<cursor>]   a page of the admin
 *                                list (as=ops); a cursor is printed as `<0|1>.<beganAtMs>.<xid>`
 */
import {
  branchVote,
  Engine,
  failedVote,
  type AdminFacts,
  type Input,
  type ListQuery,
  type Output,
  type PrepareOrder,
  type Proposal,
  type Reply,
  type ResolveAction,
} from "../../../coordinator/core/engine.js";
import type { LogIndex, Term, Xid } from "../../../coordinator/core/ids.js";
import type { LogRecord } from "../../../coordinator/core/records.js";
import type { Entry } from "../../../coordinator/core/table.js";
import type { TxnState } from "../../../coordinator/core/txn.js";
import type { ParticipantKind, Phase2Outcome } from "../../../participants/participant.js";
import type { BranchWork } from "../../../shared/branch-work.js";
import { describeRecord, engineConfig } from "./harness.js";

const startMs = 1_000;
const ops = { id: "ops", admin: true };

export class TranscriptDriver {
  private engine: Engine;
  private nowMs = startMs;
  private term = 1;
  private nextReq = 1;
  private readonly durable: Entry[] = [];
  private pending: { record: LogRecord; term: Term; proposal: Proposal }[] = [];
  private prepareOrder: PrepareOrder = "parallel";
  /** `<xid>:<n>` → the last participant call sent for that branch, with its work's kind. */
  private readonly sent = new Map<string, string>();

  constructor() {
    this.engine = this.newEngine();
    this.engine.becomeLeader(this.term as Term, this.nowMs);
  }

  private newEngine(): Engine {
    // A fixed "random" keeps backoff delays readable: three quarters of the ceiling.
    return new Engine(engineConfig(true, this.prepareOrder), () => 0.5);
  }

  /** Runs one command line; returns the printed output lines. */
  run(line: string): string[] {
    const [cmd = "", ...rest] = line.trim().split(/\s+/);
    const args = rest.filter((a) => !a.includes("="));
    const opts = Object.fromEntries(
      rest.filter((a) => a.includes("=")).map((a) => a.split("=") as [string, string]),
    );
    const arg = (i: number): string => {
      const a = args[i];
      if (a === undefined) throw new Error(`${cmd}: argument ${i + 1} missing in "${line}"`);
      return a;
    };
    const xid = (): Xid => arg(0) as Xid;
    const principal = { id: opts.as ?? "svc-a", admin: opts.as === "ops" };
    switch (cmd) {
      case "begin":
        return this.feed({
          type: "begin",
          req: this.nextReq++,
          principal,
          xid: xid(),
          timeoutMs: Number(opts.timeout ?? 10_000),
          labels: {},
          ...(opts.key ? { idem: { key: opts.key, fingerprint: "begin" } } : {}),
        });
      case "enlist": {
        const participant = arg(1);
        const kind = kindOf(participant);
        const payload = payloadOf(kind, opts.work ?? "w");
        return this.feed({
          type: "enlist",
          req: this.nextReq++,
          principal,
          xid: xid(),
          participant,
          kind,
          payload,
          payloadBytes: JSON.stringify(payload).length,
          ...(opts.key
            ? {
                idem: {
                  key: opts.key,
                  fingerprint: `enlist ${xid()} ${participant}/${opts.work ?? "w"}`,
                },
              }
            : {}),
        });
      }
      case "prepare":
      case "commit":
      case "abort":
        return this.feed({
          type: cmd,
          req: this.nextReq++,
          principal,
          xid: xid(),
          // As the API's: the route and path (these calls have no body).
          ...(opts.key ? { idem: { key: opts.key, fingerprint: `${cmd} ${xid()}` } } : {}),
        });
      case "resolve":
        return this.feed({
          type: "resolve",
          req: this.nextReq++,
          principal: ops,
          xid: xid(),
          action: arg(1) as ResolveAction,
          reason: "by hand",
          prepared: new Set(),
        });
      case "recover":
        return this.feed({
          type: "recovered",
          req: this.nextReq++,
          startedAtIndex: opts.from === undefined ? this.durable.length : Number(opts.from),
          found: [{ participant: arg(0), kind: kindOf(arg(0)), branchIds: args.slice(1) }],
        });
      case "read":
        return this.feed({ type: "view", req: this.nextReq++, principal, xid: xid() });
      case "facts":
        return this.feed({ type: "admin-facts", req: this.nextReq++, principal: ops, xid: xid() });
      case "list":
        return this.feed({
          type: "admin-list",
          req: this.nextReq++,
          principal: ops,
          query: listQuery(opts),
        });
      case "step-down":
        if (args[0] === "lost") this.pending = [];
        return this.print(this.engine.stepDown());
      case "lead":
        this.term += 1;
        return [
          `leading in term ${this.term}`,
          ...this.print(this.engine.becomeLeader(this.term as Term, this.nowMs)),
        ];
      case "become-leader":
        return this.becomeLeader(Number(opts.term));
      case "keys":
        return [`keys held: ${this.engine.keysHeld()}`];
      case "in-flight":
        return [`in flight: ${this.engine.inFlight()}`];
      case "apply":
        return this.apply(args[0] === undefined ? this.pending.length : Number(args[0]));
      case "fail-append":
        return this.failAppend(Number(arg(0)), args[1] === "landed");
      case "vote":
        return this.feed({
          type: "voted",
          xid: xid(),
          n: Number(arg(1)) as never,
          vote:
            arg(2) === "yes"
              ? { vote: "yes", ...(opts.evidence === undefined ? {} : { evidence: opts.evidence }) }
              : arg(2) === "failed"
                ? failedVote({ code: "timeout", message: "no answer in time", retryable: true })
                : branchVote({ vote: "no", reason: "statement-failed", detail: "the work failed" }),
        });
      case "done":
        return this.feed({
          type: "phase2-done",
          xid: xid(),
          n: Number(arg(1)) as never,
          outcome: outcomeOf(args[2] ?? "done"),
        });
      case "fail":
        return this.feed({
          type: "phase2-failed",
          xid: xid(),
          n: Number(arg(1)) as never,
          error: { code: "unavailable", message: "unavailable", retryable: true },
        });
      case "one-phase": {
        const o = arg(1);
        return this.feed({
          type: "one-phase-done",
          xid: xid(),
          outcome:
            o === "committed"
              ? { outcome: "committed" }
              : o === "aborted"
                ? { outcome: "aborted", reason: "not-committed", detail: "marker absent" }
                : { outcome: "unknown", detail: "connection lost" },
        });
      }
      case "tick":
        this.nowMs += args[0] === undefined ? 0 : Number(args[0].replace("+", ""));
        return this.feed({ type: "tick" });
      case "crash":
        return this.crash();
      case "prepare-order": {
        if (this.nextReq !== 1) throw new Error("prepare-order must come first");
        this.prepareOrder = arg(0) === "ordered" ? "ordered" : "parallel";
        this.engine = this.newEngine();
        this.engine.becomeLeader(this.term as Term, this.nowMs);
        return [`prepare order ${this.prepareOrder}`];
      }
      case "view":
        return [describeView(this.engine, xid())];
      case "work":
        return [this.describeWork(xid())];
      default:
        throw new Error(`unknown command "${cmd}"`);
    }
  }

  private feed(input: Input): string[] {
    return this.print(this.engine.handle(input, this.nowMs));
  }

  private print(outputs: readonly Output[]): string[] {
    const lines: string[] = [];
    for (const o of outputs) {
      if (o.type === "append") {
        this.pending.push({ record: o.record, term: this.term as Term, proposal: o.proposal });
      }
      if ("branch" in o)
        this.sent.set(`${o.xid}:${o.branch.n}`, `${o.type}=${o.branch.payload.kind}`);
      lines.push(describe(o));
    }
    return lines;
  }

  private describeWork(xid: Xid): string {
    const t = this.engine.table.get(xid);
    if (!t) return `${xid}: unknown`;
    const table = t.branches.map((b) => `${b.n}=${b.payload.kind}`).join(" ");
    const sent = t.branches.map((b) => `${b.n}:${this.sent.get(`${xid}:${b.n}`) ?? "none"}`);
    return `${xid}: table [${table}] sent [${sent.join(" ")}]`;
  }

  private apply(count: number): string[] {
    const lines: string[] = [];
    for (const p of this.pending.splice(0, count)) {
      const entry: Entry = {
        index: (this.durable.length + 1) as LogIndex,
        term: p.term,
        record: p.record,
      };
      this.durable.push(entry);
      lines.push(`durable #${entry.index}: ${describeRecord(entry.record)}`);
      lines.push(
        ...this.feed({ type: "applied", entry, proposal: p.proposal }).map((l) => `  ${l}`),
      );
    }
    return lines;
  }

  private failAppend(i: number, landed: boolean): string[] {
    const p = this.pending[i - 1];
    if (!p) throw new Error(`no pending append ${i}`);
    if (!landed) this.pending.splice(i - 1, 1);
    return this.feed({
      type: "append-failed",
      record: p.record,
      proposal: p.proposal,
      error: "timeout",
    });
  }

  private becomeLeader(term: number): string[] {
    if (!(term > this.term))
      throw new Error(`become-leader: term ${term} is not after ${this.term}`);
    this.term = term;
    const logIndex = this.durable.length + this.pending.length;
    return [
      `leading in term ${term}, the log at #${logIndex}`,
      ...this.print(this.engine.becomeLeader(term as Term, this.nowMs, logIndex)),
    ];
  }

  private crash(): string[] {
    this.pending = [];
    this.term += 1;
    this.engine = this.newEngine();
    for (const entry of this.durable) {
      const out = this.engine.handle({ type: "applied", entry }, this.nowMs);
      if (out.length > 0) throw new Error(`replay of #${entry.index} produced output`);
    }
    return [
      `restarted in term ${this.term}, replayed ${this.durable.length} entries`,
      ...this.print(this.engine.becomeLeader(this.term as Term, this.nowMs)),
    ];
  }
}

function kindOf(participant: string): ParticipantKind {
  if (participant.startsWith("pg")) return "postgres";
  if (participant.startsWith("redis")) return "redis";
  if (participant.startsWith("kafka")) return "kafka";
  throw new Error(`cannot tell the kind of ${participant}`);
}

function payloadOf(kind: ParticipantKind, work: string): BranchWork {
  switch (kind) {
    case "postgres":
      return { kind: "statements", statements: [{ sql: work, params: [] }] };
    case "redis":
      return { kind: "ops", ops: [{ op: "set", key: work, value: "1" }], preconditions: [] };
    case "kafka":
      return { kind: "messages", messages: [{ topic: "events", value: work }] };
  }
}

function outcomeOf(name: string): Phase2Outcome {
  if (name === "done" || name === "already-done") return { outcome: name };
  if (name === "heuristic-commit" || name === "heuristic-rollback")
    return { outcome: name, detail: "an operator went the other way" };
  throw new Error(`unknown phase-2 outcome ${name}`);
}

function describe(o: Output): string {
  switch (o.type) {
    case "append":
      return `append ${describeRecord(o.record)}`;
    case "prepare":
    case "commit-one-phase":
    case "check-one-phase":
      return `${o.type} ${o.xid}:${o.branch.n} ${o.branch.participant}`;
    case "commit":
    case "rollback":
      return `${o.type} ${o.xid}:${o.branch.n} ${o.branch.participant} term=${o.term}${o.evidence === undefined ? "" : ` evidence=${o.evidence}`}`;
    case "forgotten":
      return `forgotten ${o.branches.map((b) => b.branchId).join(" ") || "(no branches)"}`;
    case "reply":
      return `reply r${o.req}: ${describeReply(o.reply)}`;
  }
}

function listQuery(opts: Record<string, string>): ListQuery {
  const after = opts.after?.split(".");
  return {
    limit: Number(opts.limit ?? 10),
    ...(opts["in-doubt"] === undefined ? {} : { inDoubt: opts["in-doubt"] === "true" }),
    ...(opts.state === undefined ? {} : { state: opts.state as TxnState }),
    ...(after === undefined
      ? {}
      : {
          after: { inDoubt: after[0] === "1", beganAtMs: Number(after[1]), xid: after[2] as Xid },
        }),
  };
}

function describeFacts(f: AdminFacts): string {
  const branches = f.view.branches.map((b) => {
    const vote = b.vote?.vote === "no" ? ` vote=no:${b.vote.error.code}` : "";
    const error = f.lastErrors.get(b.branch);
    const attempts = f.attempts.get(b.branch);
    const tries = attempts ? ` attempts=${attempts}` : "";
    return `${b.branch}:${b.participant}=${b.state}${vote}${tries}${error ? ` last=${error.code}` : ""}`;
  });
  const doubt = f.inDoubt ? " in-doubt" : "";
  return `${f.view.xid} ${f.view.state}${doubt} by ${f.principal} [${branches.join(" ")}]`;
}

function describeReply(r: Reply): string {
  switch (r.kind) {
    case "facts":
      return `facts ${describeFacts(r.facts)}`;
    case "page": {
      const next = r.next ? `${r.next.inDoubt ? 1 : 0}.${r.next.beganAtMs}.${r.next.xid}` : "none";
      return [`page next=${next}`, ...r.facts.map((f) => `  ${describeFacts(f)}`)].join("\n");
    }
    case "txn": {
      const v = r.view;
      const reason = v.reason ? ` (${v.reason.code})` : "";
      const created = r.created === undefined ? "" : ` created=${r.created}`;
      return `${v.xid} ${v.state}${reason}${created}`;
    }
    case "branch":
      return `branch ${r.branch} ${r.branchId} created=${r.created}`;
    case "error":
      return `error ${r.code}: ${r.message}`;
    case "recovery":
      return `recovery ${JSON.stringify(r.report)}`;
  }
}

function describeView(engine: Engine, xid: Xid): string {
  const v = engine.view(xid);
  if (!v) return `${xid}: unknown`;
  const branches = v.branches.map((b) => `${b.branch}:${b.participant}=${b.state}`).join(" ");
  const decision = v.decision ? ` decision=${v.decision}` : "";
  return `${xid}: ${v.state}${decision} [${branches}]`;
}

/** Re-runs a transcript; returns it with every block's output replaced by what happened. */
export function replay(text: string): string {
  const driver = new TranscriptDriver();
  const lines = text.split("\n");
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    if (line.trim() === "" || line.startsWith("#")) {
      out.push(line);
      continue;
    }
    out.push(line);
    if (lines[i + 1] !== "----") throw new Error(`line ${i + 2}: expected ---- after "${line}"`);
    i += 1;
    while (i + 1 < lines.length && (lines[i + 1] ?? "").trim() !== "") i += 1;
    const got = driver.run(line);
    out.push("----", ...(got.length > 0 ? got : ["(nothing)"]));
  }
  return out.join("\n");
}
