/**
 * What a failed soak keeps for a person to read: the violations, the node's whole log (its
 * data directory is removed at the end), and for each transfer named in a violation the log
 * lines that mention its xid (tagged with the start of the node that wrote them) and every
 * Kafka record of the event topic keyed by it, aborted ones included.
 */
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { MixedWorld } from "../crash/mixed-bank.js";

export const evidenceRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../.local/soak");
/** Transfers whose log lines and records are extracted; the rest are in the files. */
const transfersShownMax = 20;
const linesPerXidMax = 60;
const topicPartitions = 3;

/** Writes the evidence of a run under `evidenceRoot`; returns its directory. */
export async function saveEvidence(
  seed: number,
  violations: readonly string[],
  logPath: string,
  world: MixedWorld,
): Promise<string> {
  const dir = join(evidenceRoot, `seed-${seed}-${new Date().toISOString().replaceAll(":", "")}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "violations.txt"), `${violations.join("\n")}\n`);
  await copyFile(logPath, join(dir, "node.log"));
  const named = violations.flatMap((v) => {
    const m = /transfer (\S+) \(xid (\S+),/.exec(v);
    return m?.[1] && m[2] ? [{ id: m[1], xid: m[2] }] : [];
  });
  const shown = [...new Map(named.map((n) => [n.id, n])).values()].slice(0, transfersShownMax);
  const log = (await readFile(logPath, "utf8")).split("\n");
  const records = await recordsByKey(world, new Set(shown.map((s) => s.id)));
  const parts = shown.map(
    ({ id, xid }) =>
      `== transfer ${id}, xid ${xid}\n` +
      `kafka records keyed ${id}: ${JSON.stringify(records.get(id) ?? [])}\n` +
      linesAbout(log, xid).join("\n"),
  );
  await writeFile(join(dir, "transfers.txt"), `${parts.join("\n\n")}\n`);
  return dir;
}

/** The log lines that mention `xid`, each tagged with the node start that wrote it. */
function linesAbout(log: readonly string[], xid: string): string[] {
  const found: string[] = [];
  let start = "?";
  for (const line of log) {
    const m = /^---- start (\d+)/.exec(line);
    if (m?.[1]) start = m[1];
    else if (xid !== "-" && line.includes(xid)) found.push(`[start ${start}] ${line}`);
    if (found.length >= linesPerXidMax) break;
  }
  return found;
}

/**
 * Every record of the event topic keyed by one of `ids`, committed or not: `p<partition>`
 * with the committed offsets, and how many raw records (aborted included) carry the id.
 */
async function recordsByKey(
  world: MixedWorld,
  ids: ReadonlySet<string>,
): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  const add = (id: string, what: string) => found.set(id, [...(found.get(id) ?? []), what]);
  for (let partition = 0; partition < topicPartitions; partition++) {
    const read = await world.reader.readPartition(world.topic, partition);
    for (const r of read.records) {
      if (r.key !== null && ids.has(r.key)) add(r.key, `committed p${partition}@${r.offset}`);
    }
    for (const raw of read.rawValues) {
      const id = (JSON.parse(raw || "null") as { id?: string } | null)?.id;
      if (id !== undefined && ids.has(id)) add(id, `raw record in p${partition}`);
    }
  }
  return found;
}
