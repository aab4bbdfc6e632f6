/**
 * Latency samples and their summary, and the fixed-width lines the benches print.
 * Samples are kept exactly (a bounded Float64Array), so percentiles are exact.
 */

export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export class LatencyRecorder {
  private readonly samples: Float64Array;
  private length = 0;

  constructor(readonly samplesMax: number) {
    if (!Number.isInteger(samplesMax) || samplesMax < 1) {
      throw new RangeError("samplesMax must be a positive integer");
    }
    this.samples = new Float64Array(samplesMax);
  }

  get count(): number {
    return this.length;
  }

  get full(): boolean {
    return this.length >= this.samplesMax;
  }

  /** Records one latency; the caller stops before `full` (the load loop bounds its count). */
  record(ms: number): void {
    if (this.full) throw new Error("assertion: LatencyRecorder is full; the caller must stop");
    this.samples[this.length++] = ms;
  }

  summary(): LatencySummary {
    const sorted = this.samples.slice(0, this.length).sort();
    return {
      count: this.length,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      maxMs: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] ?? Number.NaN),
    };
  }
}

/** Nearest-rank percentile of ascending `sorted`; NaN when empty. */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

/** `a / b`, printed as "0.42x"; "n/a" when either side is missing. */
export function formatRatio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return "n/a";
  return `${(a / b).toFixed(2)}x`;
}

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return "-";
  return ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0);
}

/** Left-aligned first column, right-aligned others, two spaces apart. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
        .join("  "),
    )
    .join("\n");
}
