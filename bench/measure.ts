/**
 * What every load bench does around a scenario: a warm-up, the measured closed loop, CPU
 * time per transaction of the clients and of the node, the load average; and the wait for
 * Verdict's phase 2 to drain from PostgreSQL before the end-of-run checks.
 */
import { loadavg } from "node:os";
import { preparedWithPrefix } from "./accounts.js";
import { say } from "./args.js";
import {
  appendsPerFsync,
  breakdownTable,
  kafkaBranchesPerTransaction,
  type Scrape,
} from "./breakdown.js";
import { formatMs, formatRatio } from "./stats.js";
import { runLoad, type LoadResult } from "./load.js";
import type { Scenario } from "./scenarios.js";

const drainTimeoutMs = 30_000;
const drainPollMs = 100;

export interface Measured<S extends Scenario = Scenario> {
  readonly scenario: S;
  readonly result: LoadResult;
  /** CPU time per successful transfer, of this process (clients) and of the node process. */
  readonly benchCpuMsPerTx: number;
  readonly nodeCpuMsPerTx: number;
  /** The machine's 1-minute load average when the scenario ended (others' work shows here). */
  readonly loadAverage: number;
  /** Per-step rows from the node's metrics (breakdown.ts); empty when the node did no work. */
  readonly breakdown: string[][];
  /** Log appends made durable per fsync (group commit); NaN when the node wrote nothing. */
  readonly appendsPerFsync: number;
  /** Kafka branches committed per Kafka transaction; NaN when no Kafka branch committed. */
  readonly kafkaBranchesPerTransaction: number;
}

export async function measure<S extends Scenario>(
  scenario: S,
  options: {
    readonly clients: number;
    readonly "duration-s": number;
    readonly "warmup-s": number;
    readonly "tx-max": number;
  },
  nodeCpuMs: () => number,
  signal: AbortSignal,
  scrape?: () => Promise<Scrape>,
): Promise<Measured<S>> {
  say(`${scenario.id}: ${scenario.title}`);
  const base = {
    unit: "tx",
    clients: options.clients,
    run: (c: number) => scenario.run(c),
    signal,
  };
  if (options["warmup-s"] > 0) {
    await runLoad({
      ...base,
      name: `${scenario.id} warm-up`,
      durationMs: options["warmup-s"] * 1000,
      opsMax: options["tx-max"],
      progress: () => undefined,
    });
  }
  const scrapeBefore = await scrape?.();
  const nodeCpuBefore = nodeCpuMs();
  const benchCpuBefore = process.cpuUsage();
  const result = await runLoad({
    ...base,
    name: scenario.id,
    durationMs: options["duration-s"] * 1000,
    opsMax: options["tx-max"],
    progress: say,
  });
  const benchCpu = process.cpuUsage(benchCpuBefore);
  const nodeCpuAfter = nodeCpuMs();
  const scrapeAfter = await scrape?.();
  for (const e of result.errorSamples) say(`  ${scenario.id} error ×${e.count}: ${e.message}`);
  return {
    scenario,
    result,
    benchCpuMsPerTx: (benchCpu.user + benchCpu.system) / 1000 / result.ok,
    nodeCpuMsPerTx: (nodeCpuAfter - nodeCpuBefore) / result.ok,
    loadAverage: loadavg()[0] ?? Number.NaN,
    breakdown:
      scrapeBefore === undefined || scrapeAfter === undefined
        ? []
        : breakdownTable(scrapeBefore, scrapeAfter, result.ok),
    appendsPerFsync:
      scrapeBefore === undefined || scrapeAfter === undefined
        ? Number.NaN
        : appendsPerFsync(scrapeBefore, scrapeAfter),
    kafkaBranchesPerTransaction:
      scrapeBefore === undefined || scrapeAfter === undefined
        ? Number.NaN
        : kafkaBranchesPerTransaction(scrapeBefore, scrapeAfter),
  };
}

export /**
 * Waits until Verdict has no branch of this cluster prepared in either database (phase 2
 * of `committing` transactions finished); answers the gids still prepared at the deadline.
 */
async function drain(prefix: string, urls: readonly string[]): Promise<string[]> {
  const deadline = Date.now() + drainTimeoutMs;
  for (;;) {
    const left: string[] = [];
    for (const url of urls) left.push(...(await preparedWithPrefix(url, prefix)));
    if (left.length === 0 || Date.now() >= deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, drainPollMs));
  }
}

/** One row per scenario: transactions, tx/s, latency, errors, CPU per transaction, load. */
export function resultTable(measured: readonly Measured[]): string[][] {
  const rows = [
    [
      "scenario",
      "tx",
      "tx/s",
      "p50 ms",
      "p99 ms",
      "max ms",
      "errors",
      "err %",
      "cpu ms/tx clients",
      "cpu ms/tx node",
      "load",
    ],
  ];
  for (const { scenario, result, benchCpuMsPerTx, nodeCpuMsPerTx, loadAverage } of measured) {
    rows.push([
      scenario.id,
      String(result.ok),
      result.opsPerSecond.toFixed(0),
      formatMs(result.latency.p50Ms),
      formatMs(result.latency.p99Ms),
      formatMs(result.latency.maxMs),
      String(result.errors),
      ((100 * result.errors) / Math.max(1, result.ok + result.errors)).toFixed(1),
      formatMs(benchCpuMsPerTx),
      formatMs(nodeCpuMsPerTx),
      loadAverage.toFixed(1),
    ]);
  }
  return rows;
}

/** Prints `subject/floor` throughput and latency ratios for each pair both of which ran. */
export function sayRatios(
  measured: readonly Measured[],
  pairs: readonly (readonly [subject: string, floor: string])[],
): void {
  const byId = new Map(measured.map((m) => [m.scenario.id, m.result]));
  for (const [subject, floor] of pairs) {
    const s = byId.get(subject);
    const f = byId.get(floor);
    if (s === undefined || f === undefined) continue;
    say(
      `${subject}/${floor}: throughput ${formatRatio(s.opsPerSecond, f.opsPerSecond)}, ` +
        `p50 latency ${formatRatio(s.latency.p50Ms, f.latency.p50Ms)}, ` +
        `p99 latency ${formatRatio(s.latency.p99Ms, f.latency.p99Ms)}`,
    );
  }
}
