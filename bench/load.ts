/**
 * Closed-loop load: `clients` concurrent loops, each running one operation after the other
 * until the duration ends, the operation count reaches `opsMax`, or `signal` aborts.
 * Prints one progress line per second. Failed operations are counted, not retried.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { LatencyRecorder, type LatencySummary } from "./stats.js";

export interface LoadOptions {
  readonly name: string;
  /** What one operation is called in progress lines ("tx", "appends"). */
  readonly unit: string;
  readonly clients: number;
  readonly durationMs: number;
  /** Operations started across all clients; also the number of latency samples kept. */
  readonly opsMax: number;
  /** One operation of client `client` (0-based); throws when it fails. */
  readonly run: (client: number) => Promise<void>;
  readonly signal: AbortSignal;
  readonly progress: (line: string) => void;
}

export interface LoadResult {
  readonly name: string;
  readonly ok: number;
  readonly errors: number;
  readonly elapsedMs: number;
  readonly opsPerSecond: number;
  /** Latency of successful operations. */
  readonly latency: LatencySummary;
  /** The first few distinct error messages, with how often each was seen. */
  readonly errorSamples: readonly { readonly message: string; readonly count: number }[];
}

/** A failing operation is followed by this pause, so a dead server is not spun against. */
const errorPauseMs = 10;
const errorSamplesMax = 5;

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { name, unit, clients, durationMs, opsMax, run, signal, progress } = options;
  const latency = new LatencyRecorder(opsMax);
  const errorCounts = new Map<string, number>();
  let started = 0;
  let ok = 0;
  let errors = 0;
  const startMs = performance.now();
  const endMs = startMs + durationMs;
  const more = () => !signal.aborted && started < opsMax && performance.now() < endMs;

  let lastOk = 0;
  let seconds = 0;
  const ticker = setInterval(() => {
    seconds++;
    progress(`  [${name}] ${seconds}s  ${ok - lastOk} ${unit}/s  (${ok} ok, ${errors} errors)`);
    lastOk = ok;
  }, 1000);

  const loop = async (client: number) => {
    while (more()) {
      started++;
      const t0 = performance.now();
      try {
        await run(client);
        latency.record(performance.now() - t0);
        ok++;
      } catch (err) {
        errors++;
        const message = err instanceof Error ? err.message : String(err);
        const seen = errorCounts.get(message);
        if (seen !== undefined) errorCounts.set(message, seen + 1);
        else if (errorCounts.size < errorSamplesMax) errorCounts.set(message, 1);
        await sleep(errorPauseMs);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: clients }, (_, client) => loop(client)));
  } finally {
    clearInterval(ticker);
  }
  const elapsedMs = performance.now() - startMs;
  return {
    name,
    ok,
    errors,
    elapsedMs,
    opsPerSecond: (ok * 1000) / elapsedMs,
    latency: latency.summary(),
    errorSamples: [...errorCounts].map(([message, count]) => ({ message, count })),
  };
}
