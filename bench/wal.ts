/**
 * WAL bench: appends through the LocalDecisionLog (group commit) with 1, 16 and 128
 * concurrent appenders, against the floor measured in the same run: one appender doing
 * serial write(512 bytes) + fdatasync on a plain file. The floor runs first and last; the
 * ratios use their mean, so a machine that got busier midway shows as a gap between them.
 *
 *   node --import tsx bench/wal.ts [--duration-s S] [--record-bytes B]
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, open, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type { RecordCodec } from "../coordinator/log/decision-log.js";
import { LocalDecisionLog } from "../coordinator/log/local-decision-log.js";
import { NodeStorage } from "../coordinator/log/node-storage.js";
import { parseOptions, runMain, say } from "./args.js";
import { runLoad, type LoadResult } from "./load.js";
import { formatMs, formatRatio, formatTable } from "./stats.js";

const spec = {
  "duration-s": { default: 5, min: 1, max: 600, help: "measured seconds per run" },
  "record-bytes": { default: 512, min: 1, max: 1024 * 1024, help: "bytes per record" },
  "appends-max": { default: 1_000_000, min: 1, max: 10_000_000, help: "appends per run" },
} as const;

const appenderCounts = [1, 16, 128] as const;

/** Records are raw bytes: the bench measures the log, not JSON. */
const bytesCodec: RecordCodec<Uint8Array> = { encode: (r) => r, decode: (b) => b };

interface Row {
  readonly name: string;
  readonly result: LoadResult;
  readonly fsyncs: number;
  readonly entries: number;
}

async function main(argv: readonly string[]): Promise<number> {
  const options = parseOptions("node --import tsx bench/wal.ts", spec, argv);
  const durationMs = options["duration-s"] * 1000;
  const record = randomBytes(options["record-bytes"]);
  const dir = await mkdtemp(join(tmpdir(), "verdict-bench-wal-"));
  const signal = new AbortController().signal;
  say(
    `wal bench: ${options["record-bytes"]}-byte records, ${options["duration-s"]} s per run, ` +
      `in ${dir}; ${cpus().length} cpus, load average ${loadavg()[0]?.toFixed(1)}`,
  );
  const common = {
    unit: "appends",
    durationMs,
    opsMax: options["appends-max"],
    signal,
    progress: say,
  };
  const rows: Row[] = [];
  try {
    const floor = async (name: string): Promise<Row> => {
      const file = await open(join(dir, `${name}.dat`), "a");
      try {
        const result = await runLoad({
          ...common,
          name,
          clients: 1,
          run: async () => {
            await file.write(record);
            await file.datasync();
          },
        });
        return { name, result, fsyncs: result.ok, entries: result.ok };
      } finally {
        await file.close();
      }
    };
    rows.push(await floor("floor (before)"));
    for (const appenders of appenderCounts) {
      let fsyncs = 0;
      let entries = 0;
      const log = await LocalDecisionLog.open<Uint8Array>({
        storage: new NodeStorage(),
        dir: join(dir, `log-${appenders}`),
        codec: bytesCodec,
        onFsync: (_ms, n) => {
          fsyncs++;
          entries += n;
        },
      });
      try {
        const name = `log, ${appenders} appender${appenders === 1 ? "" : "s"}`;
        const result = await runLoad({
          ...common,
          name,
          clients: appenders,
          run: async () => {
            await log.append([record]);
          },
        });
        rows.push({ name, result, fsyncs, entries });
      } finally {
        await log.close();
      }
    }
    rows.push(await floor("floor (after)"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  printRows(rows);
  return rows.some((r) => r.result.errors > 0) ? 1 : 0;
}

function printRows(rows: readonly Row[]): void {
  const floors = rows.filter((r) => r.name.startsWith("floor"));
  const floorPerSecond =
    floors.reduce((sum, r) => sum + r.result.opsPerSecond, 0) / Math.max(1, floors.length);
  const table = [
    [
      "run",
      "appends",
      "appends/s",
      "p50 ms",
      "p99 ms",
      "max ms",
      "fsyncs",
      "entries/fsync",
      "vs floor",
    ],
  ];
  for (const { name, result, fsyncs, entries } of rows) {
    table.push([
      name,
      String(result.ok),
      result.opsPerSecond.toFixed(0),
      formatMs(result.latency.p50Ms),
      formatMs(result.latency.p99Ms),
      formatMs(result.latency.maxMs),
      String(fsyncs),
      fsyncs === 0 ? "-" : (entries / fsyncs).toFixed(1),
      formatRatio(result.opsPerSecond, floorPerSecond),
    ]);
  }
  say(`\n${formatTable(table)}\n`);
  say(`floor: mean of the two floor runs, ${floorPerSecond.toFixed(0)} appends/s`);
  for (const r of rows) {
    for (const e of r.result.errorSamples) say(`${r.name} error ×${e.count}: ${e.message}`);
  }
}

runMain(main);
