/**
 * `verdict log dump`: prints a stopped node's decision log — its snapshot, then one line per
 * entry — without changing a byte of it (log/wal-reader.ts). What opening the log would
 * repair or refuse is reported, not done: a torn tail exits 0 (opening cuts it, as after
 * any crash), corruption exits 1 (opening would refuse the log).
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { NodeStorage } from "../../log/node-storage.js";
import { readWalReadOnly, type WalFinding } from "../../log/wal-reader.js";
import { intFlag, parseCommand, wantsHelp } from "../args.js";
import { CliError, exitCodes, UsageError, type ExitCode } from "../errors.js";
import { cell } from "../text.js";
import { describeRecord, describeSnapshot } from "./records.js";

export const logUsage = `usage: verdict log dump --data-dir DIR [--from INDEX] [--to INDEX] [--json]

Prints the decision log of a stopped node: the snapshot (its index and every
transaction it holds), then one line per entry: index, term, time, record type,
xids and a summary. Reads only: nothing in DIR is changed, not even a torn tail.

  --data-dir DIR   the node's data directory (node.dataDir; its log/ is read)
  --from INDEX     first entry to print (default: the first after the snapshot)
  --to INDEX       last entry to print (default: the last)
  --json           one JSON object per line: snapshot, entry, finding, end

exit codes: 0 read (a torn tail is reported: the node cuts it when it opens),
            1 corruption (the node would refuse to open this log) or no log in DIR,
            2 bad usage`;

const indexMax = Number.MAX_SAFE_INTEGER;
const xidsShownMax = 20;

/** Runs the command, writing each line through `out` as it is read. */
export async function runLog(
  args: readonly string[],
  out: (line: string) => void,
): Promise<ExitCode> {
  if (args.length === 0 || wantsHelp(args)) {
    out(logUsage);
    return exitCodes.ok;
  }
  const { positionals, values } = parseCommand(
    args,
    {
      "data-dir": { type: "string" },
      from: { type: "string" },
      to: { type: "string" },
      json: { type: "boolean" },
    },
    logUsage,
  );
  if (positionals[0] !== "dump" || positionals.length > 1) {
    throw new UsageError(`unknown log command ${JSON.stringify(positionals.join(" "))}`, logUsage);
  }
  if (!values["data-dir"]) throw new UsageError("--data-dir DIR is required", logUsage);
  const from = intFlag("from", values.from, { min: 1, max: indexMax }, logUsage) ?? 1;
  const to = intFlag("to", values.to, { min: 1, max: indexMax }, logUsage) ?? indexMax;
  if (from > to) throw new UsageError(`--from ${from} is after --to ${to}`, logUsage);
  const dir = await logDirOf(values["data-dir"]);
  return dump(dir, { from, to }, values.json === true ? jsonPrinter(out) : textPrinter(dir, out));
}

interface Printer {
  snapshot(s: { file: string; index: number; term: number; data: Uint8Array }): void;
  entry(e: { index: number; term: number; payload: Uint8Array }): void;
  finding(f: WalFinding): void;
  end(summary: { entries: number; firstIndex?: number; lastIndex?: number }): void;
}

async function dump(
  dir: string,
  range: { from: number; to: number },
  print: Printer,
): Promise<ExitCode> {
  let entries = 0;
  let firstIndex: number | undefined;
  let lastIndex: number | undefined;
  let corrupt = false;
  for await (const event of readWalReadOnly(new NodeStorage(), dir)) {
    switch (event.kind) {
      case "snapshot":
        print.snapshot(event);
        break;
      case "entry":
        if (event.index < range.from || event.index > range.to) break;
        entries += 1;
        firstIndex ??= event.index;
        lastIndex = event.index;
        print.entry(event);
        break;
      case "finding":
        corrupt ||= event.finding.kind === "corruption";
        print.finding(event.finding);
        break;
    }
  }
  print.end({ entries, ...(firstIndex === undefined ? {} : { firstIndex, lastIndex }) });
  return corrupt ? exitCodes.refused : exitCodes.ok;
}

/** The node's data directory holds the log in `log/`; a log directory itself is taken too. */
async function logDirOf(dataDir: string): Promise<string> {
  const candidates = [join(dataDir, "log"), dataDir];
  for (const dir of candidates) {
    const names = await new NodeStorage().list(dir);
    if (names.some((n) => n.endsWith(".wal") || n.endsWith(".snap"))) return dir;
  }
  const exists = await stat(dataDir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  throw new CliError(
    exitCodes.refused,
    exists
      ? `no decision log in ${dataDir} (no segments or snapshots in ${candidates[0]})`
      : `${dataDir} is not a directory`,
  );
}

function jsonPrinter(out: (line: string) => void): Printer {
  const line = (o: object) => out(JSON.stringify(o));
  return {
    snapshot: (s) => {
      const d = describeSnapshot(s.data);
      line({
        kind: "snapshot",
        file: s.file,
        index: s.index,
        term: s.term,
        bytes: s.data.byteLength,
        ...("problem" in d ? { problem: d.problem } : { transactions: d.txns }),
      });
    },
    entry: (e) => {
      const d = describeRecord(e.payload);
      line({
        kind: "entry",
        index: e.index,
        term: e.term,
        at: d.at ?? null,
        type: d.type,
        xids: d.xids,
        summary: d.summary,
        record: d.record ?? null,
      });
    },
    finding: (f) => line({ ...f, kind: "finding", finding: f.kind }),
    end: (s) => line({ kind: "end", ...s }),
  };
}

function textPrinter(dir: string, out: (line: string) => void): Printer {
  let headed = false;
  let maybeRunning = false;
  const entryHeader = () => {
    if (headed) return;
    headed = true;
    out("entries:");
  };
  out(`decision log ${dir} (read only)`);
  return {
    snapshot: (s) => {
      const d = describeSnapshot(s.data);
      if ("problem" in d) {
        out(
          `snapshot at index ${s.index} (term ${s.term}, ${s.data.byteLength} bytes): ${d.problem}`,
        );
        return;
      }
      out(`snapshot at index ${s.index} (term ${s.term}): ${d.txns.length} transaction(s)`);
      for (const t of d.txns) {
        const decision = t.decision === undefined ? "undecided" : `${t.decision} ${t.code ?? ""}`;
        const heuristic = t.heuristic === undefined ? "" : ` ${t.heuristic}`;
        out(
          `  ${t.xid}  ${t.state}  ${decision.trim()}${heuristic}  ` +
            `${t.branches} branch(es), ${t.acked} acknowledged`,
        );
      }
    },
    entry: (e) => {
      entryHeader();
      const d = describeRecord(e.payload);
      const xids =
        d.xids.length > xidsShownMax
          ? `${d.xids.slice(0, xidsShownMax).join(",")},+${d.xids.length - xidsShownMax}`
          : d.xids.join(",");
      out(
        `${String(e.index).padStart(8)}  t${e.term}  ${d.at ?? "-".padEnd(24)}  ` +
          `${d.type.padEnd(9)}  ${cell(xids, 2000)}  ${d.summary}`,
      );
    },
    finding: (f) => {
      maybeRunning ||= f.kind === "torn-tail" || f.kind === "vanished";
      out(findingText(f));
    },
    end: (s) => {
      out(
        s.entries === 0
          ? "no entries in range"
          : `${s.entries} entries, index ${s.firstIndex} to ${s.lastIndex}`,
      );
      if (maybeRunning) {
        // The data directory holds no lock or pid file, so a live node cannot be ruled out.
        out(
          "note: if a node is running on this directory, a torn tail may be a write in " +
            "progress and a vanished file a compaction: stop the node for an exact dump",
        );
      }
    },
  };
}

function findingText(f: WalFinding): string {
  switch (f.kind) {
    case "torn-tail":
      return (
        `torn tail: ${f.file} at byte offset ${f.offsetBytes}: ${f.reason}; ${f.bytesAfter} ` +
        `byte(s) after the last whole record (left as is; opening the log would cut them)`
      );
    case "corruption":
      return (
        `CORRUPTION: ${f.file} at byte offset ${f.offsetBytes}: ${f.reason} ` +
        `(a node would refuse to open this log; nothing after it was read)`
      );
    case "unreadable-snapshot":
      return `unreadable snapshot ${f.file}: ${f.reason} (opening would use an older one)`;
    case "superseded-snapshot":
      return `superseded snapshot ${f.file} (opening would remove it)`;
    case "temp-file":
      return `temp file ${f.file} (an unfinished snapshot; opening would remove it)`;
    case "covered-segment":
      return `segment ${f.file} is covered by the snapshot (opening would remove it)`;
    case "unknown-file":
      return `unknown file ${f.file} (not part of the log; ignored)`;
    case "vanished":
      return `${f.file} vanished while being read`;
  }
}
