/**
 * Proves the cluster bench's (bench/cluster.ts) option parsing and the shape of its log-cost
 * report, without running it (benches are measured, never timed in tests): the defaults the
 * issue asks for (20 failover trials), bad options refused, and round trips per transfer and
 * entries per append computed from two scrapes of a node's metrics.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { UsageError } from "../../../bench/args.js";
import { parseClusterOptions } from "../../../bench/cluster.js";
import { logCostRows, logCounters } from "../../../bench/cluster-metrics.js";

describe("cluster bench", () => {
  test("defaults: 20 crash failovers, the configured lease TTL, bounded load", () => {
    const o = parseClusterOptions([]);
    assert.equal(o["failover-trials"], 20);
    assert.equal(o["lease-ttl-ms"], 5000);
    assert.equal(o.clients, 16);
    assert.equal(o["duration-s"], 10);
    assert.equal(parseClusterOptions(["--failover-trials", "30"])["failover-trials"], 30);
  });

  test("refuses a TTL etcd cannot hold, out-of-range counts and unknown flags", () => {
    for (const argv of [
      ["--lease-ttl-ms", "2500"],
      ["--failover-trials", "-1"],
      ["--handover-trials", "101"],
      ["--transfer", "batch"],
      ["--nodes", "5"],
    ]) {
      assert.throws(() => parseClusterOptions(argv), UsageError, argv.join(" "));
    }
  });

  test("etcd round trips and entries per append, per transfer, between two scrapes", () => {
    const scrape = (txn: number, range: number, records: number) =>
      [
        `verdict_etcd_requests_total{method="KV.txn"} ${txn}`,
        `verdict_etcd_requests_total{method="KV.range"} ${range}`,
        `verdict_log_append_seconds_count{record="preparing"} ${records / 2}`,
        `verdict_log_append_seconds_count{record="decide"} ${records / 2}`,
      ].join("\n");
    const rows = logCostRows(logCounters(scrape(10, 5, 20)), logCounters(scrape(30, 15, 100)), 20);
    const row = (name: string) => rows.find((r) => r[0]?.trim() === name)?.[1];
    assert.equal(row("log records appended"), "4.00");
    assert.equal(row("etcd KV.txn"), "1.00");
    assert.equal(row("etcd KV.range"), "0.50");
    assert.equal(row("etcd requests (round trips)"), "1.50");
    assert.equal(row("log entries per etcd append (Txn)"), "4.00");
  });

  test("the local log: fsyncs and entries per fsync, and no etcd rows", () => {
    const scrape = (fsyncs: number, entries: number) =>
      [
        `verdict_log_entries_per_fsync_sum ${entries}`,
        `verdict_log_entries_per_fsync_count ${fsyncs}`,
        `verdict_log_append_seconds_count{record="acks"} ${entries}`,
      ].join("\n");
    const rows = logCostRows(logCounters(scrape(0, 0)), logCounters(scrape(5, 40)), 10);
    assert.deepEqual(rows, [
      ["per transfer", "count"],
      ["log records appended", "4.00"],
      ["local log fsyncs", "0.50"],
      ["  entries per fsync", "8.00"],
    ]);
  });
});
