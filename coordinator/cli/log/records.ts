/**
 * Decision-log records and snapshots described for people: the record type, the xids it
 * concerns and a one-line summary. Pure. A record this build does not know — a newer type,
 * a changed field, bytes that are not JSON — is shown raw, never refused: a dump must read
 * every log, including one written by a newer version.
 */
import { jsonCodec } from "../../log/decision-log.js";
import type { LogRecord } from "../../core/records.js";
import { durableState, heuristicOf, TxnTable } from "../../core/table.js";
import { cell } from "../text.js";

export interface RecordDescription {
  readonly type: string;
  readonly xids: readonly string[];
  /** Record time as ISO, when the record carries one. */
  readonly at: string | undefined;
  readonly summary: string;
  /** The decoded record (JSON), or undefined when the payload is not JSON. */
  readonly record: unknown;
}

const codec = jsonCodec<unknown>();
const rawCharsMax = 2000;

export function describeRecord(payload: Uint8Array): RecordDescription {
  let record: unknown;
  try {
    record = codec.decode(payload);
  } catch (error) {
    return {
      type: "undecodable",
      xids: [],
      at: undefined,
      summary: `${payload.byteLength} bytes, not JSON (${String(error)}): ${Buffer.from(payload.subarray(0, 64)).toString("hex")}`,
      record: undefined,
    };
  }
  const fields = (record ?? {}) as { type?: unknown; atMs?: unknown };
  const type = typeof fields.type === "string" ? fields.type : "unknown";
  const at = typeof fields.atMs === "number" ? isoOrUndefined(fields.atMs) : undefined;
  try {
    const known = describeKnown(record as LogRecord);
    if (known !== undefined) return { type, at, record, ...known };
  } catch {
    // A known type whose fields changed: fall through to the raw form.
  }
  return {
    type,
    xids: [],
    at,
    summary: `raw ${cell(JSON.stringify(record), rawCharsMax)}`,
    record,
  };
}

function describeKnown(r: LogRecord): { xids: string[]; summary: string } | undefined {
  const by = operatorOf(r);
  switch (r.type) {
    case "preparing": {
      const branches = r.branches.map((b) => `${b.n} ${b.participant} (${b.kind})`).join(", ");
      return {
        xids: [r.txn.xid],
        summary:
          `${r.branches.length} branch(es): ${branches}${r.onePhase ? "; one-phase" : ""}; ` +
          `principal ${r.txn.principal}; deadline ${isoOrUndefined(r.txn.deadlineMs) ?? "-"}${by}`,
      };
    }
    case "decide": {
      const branch = r.branch === undefined ? "" : ` (branch ${r.branch})`;
      const header =
        r.txn === undefined ? "" : `; ${r.branches?.length ?? 0} branch(es) unprepared`;
      const acks = r.acks?.length ? `; settled ${acksText(r.acks)}` : "";
      return {
        xids: [r.xid],
        summary: `${r.decision} ${r.code}${branch}: ${cell(r.reason, 500)}${header}${acks}${by}`,
      };
    }
    case "acks":
      return { xids: unique(r.acks.map((a) => a.xid)), summary: `${acksText(r.acks)}${by}` };
    case "recover": {
      const branches = r.branches.map((b) => `${b.n} ${b.participant} (${b.kind})`).join(", ");
      const unknown = r.txn === undefined ? "" : "unknown to the log, decided abort; ";
      return {
        xids: [r.xid],
        summary: `found prepared ${branches}; ${unknown}${cell(r.reason, 500)}${by}`,
      };
    }
    case "forget":
      return { xids: [...r.xids], summary: `forget ${r.xids.length} transaction(s)${by}` };
    default:
      return undefined;
  }
}

/** `x1#1 done, x1#2 heuristic-rollback: detail`; just `#1 done, …` when all are of one xid. */
function acksText(acks: readonly { xid: string; n: number; outcome: string; detail?: string }[]) {
  const oneXid = unique(acks.map((a) => a.xid)).length === 1;
  return acks
    .map(
      (a) =>
        `${oneXid ? "" : a.xid}#${a.n} ${a.outcome}${a.detail ? `: ${cell(a.detail, 200)}` : ""}`,
    )
    .join(", ");
}

/** Records an operator caused carry who and why; shown wherever they appear. */
function operatorOf(r: unknown): string {
  const op = (r as { operator?: { id?: unknown; reason?: unknown } }).operator;
  if (op === undefined || op === null) return "";
  return `; by operator ${cell(op.id)}: ${cell(op.reason, 500)}`;
}

export interface SnapshotTxn {
  readonly xid: string;
  readonly state: string;
  readonly decision: string | undefined;
  readonly code: string | undefined;
  readonly heuristic: string | undefined;
  readonly branches: number;
  readonly acked: number;
}

/** The transactions a snapshot holds, read by the engine's own table; or why it cannot be. */
export function describeSnapshot(
  data: Uint8Array,
): { readonly txns: SnapshotTxn[] } | { readonly problem: string } {
  let table: TxnTable;
  try {
    table = TxnTable.restore(data);
  } catch (error) {
    return { problem: `not readable by this build: ${String(error)}` };
  }
  return {
    txns: [...table.all()].map((t) => ({
      xid: t.header.xid,
      state: durableState(t),
      decision: t.decision?.decision,
      code: t.decision?.code,
      heuristic: heuristicOf(t),
      branches: t.branches.length,
      acked: t.acks.size,
    })),
  };
}

function isoOrUndefined(ms: number): string | undefined {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

function unique(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}
