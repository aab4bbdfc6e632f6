/**
 * The per-step latency breakdown of a scenario, from the node's own Prometheus histograms:
 * a scrape of `/metrics` before and after the measured run, and the difference of each
 * series' `_sum` and `_count`. Printed per transfer: how many of each step ran (HTTP call by
 * route, log append by record, participant call by participant and operation) and the mean
 * time of one. Steps overlap (an HTTP call contains its appends and prepares), so the rows
 * do not add up to the latency; they show where the time of one transfer goes. The log's
 * fsyncs are a row too: appends per fsync is the group commit across transactions.
 */
import { formatMs } from "./stats.js";

/** The histograms read, with the label that names a step in each. */
const stepHistograms: readonly { readonly metric: string; readonly what: string }[] = [
  { metric: "verdict_route_seconds", what: "HTTP" },
  { metric: "verdict_log_append_seconds", what: "log append" },
  { metric: "verdict_log_fsync_seconds", what: "log fsync" },
  { metric: "verdict_participant_call_seconds", what: "participant" },
  // Not a latency: its sum counts branches (kafkaBranchesPerTransaction).
  { metric: "verdict_kafka_branches_per_transaction", what: "kafka transaction" },
];
const notSteps = "kafka transaction";
/** A scrape's series kept at most (each route × status, record, participant × op is one). */
const seriesMax = 1000;

/** `sum` (seconds) and `count` per series, keyed by metric and labels. */
export type Scrape = ReadonlyMap<string, { readonly sum: number; readonly count: number }>;

export async function scrapeMetrics(url: string): Promise<Scrape> {
  return parseScrape(await metricsText(url));
}

/** The node's `/metrics` page, as Prometheus text. */
export async function metricsText(url: string): Promise<string> {
  const response = await fetch(`${url}/metrics`);
  if (!response.ok) throw new Error(`GET ${url}/metrics: HTTP ${response.status}`);
  return response.text();
}

/** Reads the `_sum` and `_count` lines of the step histograms from Prometheus text. */
export function parseScrape(text: string): Scrape {
  const series = new Map<string, { sum: number; count: number }>();
  for (const line of text.split("\n")) {
    const match = /^(\w+)_(sum|count)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match === null) continue;
    const [, metric = "", field, labels = "", value = ""] = match;
    const step = stepHistograms.find((h) => h.metric === metric);
    if (step === undefined) continue;
    const key = `${step.what} ${labelText(labels)}`.trim();
    let entry = series.get(key);
    if (entry === undefined) {
      if (series.size >= seriesMax) continue;
      entry = { sum: 0, count: 0 };
      series.set(key, entry);
    }
    if (field === "sum") entry.sum += Number(value);
    else entry.count += Number(value);
  }
  return series;
}

/** `{route="POST /x",status="200"}` → `POST /x`: the status is folded in (all answers count). */
function labelText(labels: string): string {
  const values = [...labels.matchAll(/(\w+)="([^"]*)"/g)]
    .filter(([, name]) => name !== "status")
    .map(([, , value]) => value);
  return values.join(" ");
}

/** Rows: step, calls per transfer, mean ms per call, ms per transfer. */
export function breakdownTable(before: Scrape, after: Scrape, transfers: number): string[][] {
  const rows = [["step", "per tx", "mean ms", "ms per tx"]];
  for (const [key, end] of [...after].sort(([a], [b]) => a.localeCompare(b))) {
    if (key.startsWith(notSteps)) continue;
    const start = before.get(key) ?? { sum: 0, count: 0 };
    const count = end.count - start.count;
    if (count <= 0 || transfers <= 0) continue;
    const ms = (end.sum - start.sum) * 1000;
    rows.push([
      key,
      (count / transfers).toFixed(2),
      formatMs(ms / count),
      formatMs(ms / transfers),
    ]);
  }
  return rows;
}

/** Log appends (every record kind) made durable per fsync during the run: group commit. */
export function appendsPerFsync(before: Scrape, after: Scrape): number {
  const delta = (prefix: string) =>
    [...after]
      .filter(([key]) => key.startsWith(prefix))
      .reduce((sum, [key, end]) => sum + end.count - (before.get(key)?.count ?? 0), 0);
  return delta("log append") / delta("log fsync");
}

/** Kafka branches per Kafka transaction during the run (batching); NaN when none committed. */
export function kafkaBranchesPerTransaction(before: Scrape, after: Scrape): number {
  let branches = 0;
  let transactions = 0;
  for (const [key, end] of after) {
    if (!key.startsWith(notSteps)) continue;
    branches += end.sum - (before.get(key)?.sum ?? 0);
    transactions += end.count - (before.get(key)?.count ?? 0);
  }
  return transactions > 0 ? branches / transactions : Number.NaN;
}
