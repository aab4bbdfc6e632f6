/**
 * What one transfer costs the decision log, from two scrapes of the serving node's /metrics
 * around a measured run: the etcd requests it sent, by method
 * (`verdict_etcd_requests_total{method}`), and the log records it appended
 * (`verdict_log_append_seconds_count`); on the local log, its fsyncs and the entries each
 * made durable (`verdict_log_entries_per_fsync`).
 *
 * Entries per etcd append = records appended / `KV.txn` requests. Every append is one Txn;
 * the leader's other Txns happen at a change of term (campaign, resign, handover, `meta`) or
 * at a snapshot (one per `log.snapshotEveryEntries`, 10,000 by default: its chunks and its
 * pointer), so within a measured run they are few, and counted here as appends.
 */
import { metricsText, parseScrape, type Scrape } from "./breakdown.js";

/** Series of one metric kept at most (one per etcd method). */
const seriesMax = 100;

export interface LogCounters {
  /** etcd requests sent, by `Service.method`. */
  readonly etcdRequests: ReadonlyMap<string, number>;
  /** Log records appended (every record type). */
  readonly records: number;
  /** Local log: fsyncs, and the entries they made durable. */
  readonly fsyncs: number;
  readonly fsyncedEntries: number;
}

/**
 * A scrape function for measure.ts (its per-step breakdown) that also keeps this file's
 * counters of every scrape, in order: measure scrapes once before the run and once after.
 */
export function scrapingCounters(url: string): {
  readonly scrape: () => Promise<Scrape>;
  readonly taken: LogCounters[];
} {
  const taken: LogCounters[] = [];
  return {
    taken,
    scrape: async () => {
      const text = await metricsText(url);
      taken.push(logCounters(text));
      return parseScrape(text);
    },
  };
}

export function logCounters(text: string): LogCounters {
  const appends = seriesOf(text, "verdict_log_append_seconds_count");
  return {
    etcdRequests: seriesOf(text, "verdict_etcd_requests_total"),
    records: [...appends.values()].reduce((sum, n) => sum + n, 0),
    fsyncs: seriesOf(text, "verdict_log_entries_per_fsync_count").get("") ?? 0,
    fsyncedEntries: seriesOf(text, "verdict_log_entries_per_fsync_sum").get("") ?? 0,
  };
}

/** Rows: what the log did per transfer between two scrapes (`transfers` committed). */
export function logCostRows(
  before: LogCounters,
  after: LogCounters,
  transfers: number,
): string[][] {
  const per = (n: number) => (transfers > 0 ? (n / transfers).toFixed(2) : "-");
  const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : "-");
  const records = after.records - before.records;
  const rows = [
    ["per transfer", "count"],
    ["log records appended", per(records)],
  ];
  const fsyncs = after.fsyncs - before.fsyncs;
  if (fsyncs > 0) {
    rows.push(["local log fsyncs", per(fsyncs)]);
    rows.push(["  entries per fsync", ratio(after.fsyncedEntries - before.fsyncedEntries, fsyncs)]);
  }
  let total = 0;
  for (const [method, end] of [...after.etcdRequests].sort(([a], [b]) => a.localeCompare(b))) {
    const n = end - (before.etcdRequests.get(method) ?? 0);
    if (n <= 0) continue;
    total += n;
    rows.push([`etcd ${method}`, per(n)]);
  }
  if (total > 0) {
    rows.push(["etcd requests (round trips)", per(total)]);
    const txns = (after.etcdRequests.get("KV.txn") ?? 0) - (before.etcdRequests.get("KV.txn") ?? 0);
    rows.push(["  log entries per etcd append (Txn)", ratio(records, txns)]);
  }
  return rows;
}

/** The steps of a node's last takeover (runner.ts's TakeoverSteps), epoch ms; none: undefined. */
export interface TakeoverTimes {
  readonly seenFreeAtMs: number;
  readonly wonAtMs: number;
  readonly openedAtMs: number;
  readonly servingAtMs: number;
}

export function takeoverTimes(text: string): TakeoverTimes | undefined {
  const steps = seriesOf(text, "verdict_cluster_takeover_step_timestamp_seconds");
  const at = (step: string) => (steps.get(step) ?? Number.NaN) * 1000;
  const times = {
    seenFreeAtMs: at("seenFree"),
    wonAtMs: at("won"),
    openedAtMs: at("opened"),
    servingAtMs: at("serving"),
  };
  return Object.values(times).every(Number.isFinite) ? times : undefined;
}

/** `metric{labels} value` lines → value per labels text ("" for none); bounded. */
function seriesOf(text: string, metric: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(metric)) continue;
    const match = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match?.[1] !== metric || values.size >= seriesMax) continue;
    const labels = [...(match[2] ?? "").matchAll(/="([^"]*)"/g)].map((m) => m[1]).join(" ");
    values.set(labels, (values.get(labels) ?? 0) + Number(match[3]));
  }
  return values;
}
