/**
 * Prints a node's JSON log lines readably: time, level, node, message, then the other fields.
 * Lines that are not JSON (a stack trace) pass through as they are.
 *
 *   npx tsx deploy/demo/live/pretty-log.ts .local/demo/cluster/logs/demo-1.log [--tail N]
 */
import { readFile } from "node:fs/promises";

const levels: Record<number, string> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO ",
  40: "WARN ",
  50: "ERROR",
  60: "FATAL",
};

export function prettyLine(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, node, msg, ...rest } = entry;
  const text = (v: unknown) => (typeof v === "string" ? v : (JSON.stringify(v) ?? ""));
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${text(v)}`)
    .join(" ");
  const when = typeof time === "string" ? time.slice(11, 23) : "";
  return `${when} ${levels[Number(level)] ?? String(level)} ${text(node)} ${text(msg)}  ${fields}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [path, flag, count] = process.argv.slice(2);
  if (path === undefined) {
    console.error("usage: pretty-log.ts FILE [--tail N]");
    process.exit(2);
  }
  const lines = (await readFile(path, "utf8")).split("\n").filter((l) => l !== "");
  const shown = flag === "--tail" ? lines.slice(-Number(count)) : lines;
  for (const line of shown) console.log(prettyLine(line));
}
