/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): the share of samples idle, in
 * garbage collection, and per area (a package under node_modules, a folder of ours, Node's
 * internals), then the functions with the most self time. Used for docs/bench.md.
 *
 *   node --import tsx bench/cpu-profile.ts FILE.cpuprofile [--top N]
 */
import { readFile } from "node:fs/promises";
import { parseOptions, runMain, say } from "./args.js";
import { formatTable } from "./stats.js";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; lineNumber: number };
  readonly hitCount?: number;
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
}

const spec = {
  top: { default: 25, min: 1, max: 500, help: "functions listed" },
} as const;

async function main(argv: readonly string[]): Promise<number> {
  const files = argv.filter((a) => a.endsWith(".cpuprofile"));
  const options = parseOptions(
    "node --import tsx bench/cpu-profile.ts FILE.cpuprofile",
    spec,
    argv.filter((a) => !a.endsWith(".cpuprofile")),
  );
  for (const file of files) {
    const profile = JSON.parse(await readFile(file, "utf8")) as Profile;
    say(`${file}: ${profile.samples.length} samples`);
    const { areas, functions } = summarise(profile);
    say(formatTable(shareRows("area", areas, profile.samples.length, 40)));
    say("");
    say(formatTable(shareRows("function (self)", functions, profile.samples.length, options.top)));
    say("");
  }
  return files.length > 0 ? 0 : 2;
}

/** Self samples per area and per function. */
export function summarise(profile: Profile): {
  areas: Map<string, number>;
  functions: Map<string, number>;
} {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  for (const id of profile.samples) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const area = areaOf(functionName, url);
    areas.set(area, (areas.get(area) ?? 0) + 1);
    const fn = `${functionName || "(anonymous)"} ${shortUrl(url)}:${lineNumber + 1}`;
    functions.set(fn, (functions.get(fn) ?? 0) + 1);
  }
  return { areas, functions };
}

function areaOf(functionName: string, url: string): string {
  if (url === "") return functionName.startsWith("(") ? functionName : "(native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg !== undefined) return pkg;
  if (url.startsWith("node:")) return "node internals";
  const ours = /\/(?:dist\/)?(coordinator\/\w+|participants\/\w+|client|bench|shared)\//.exec(url);
  return ours?.[1] ?? shortUrl(url);
}

function shortUrl(url: string): string {
  return url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*?\/(dist\/)?/, "");
}

function shareRows(
  title: string,
  counts: Map<string, number>,
  total: number,
  top: number,
): string[][] {
  const rows = [[title, "samples", "share"]];
  for (const [name, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    rows.push([name, String(n), `${((100 * n) / total).toFixed(1)}%`]);
  }
  return rows;
}

runMain(main);
