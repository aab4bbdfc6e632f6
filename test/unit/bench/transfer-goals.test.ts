/**
 * Proves that the transfer bench's goal table (bench/goals.ts) prints the goals its other
 * deployments measure — the mixed transfer against its by-hand baseline (M/M0, M1/M0) and A
 * through the 3-node etcd cluster against A0 — as ratios of the same run, "not run" when
 * their scenarios did not run; and that `--mixed`/`--cluster auto` (bench/options.ts) run a
 * part exactly when its services accept connections. Benches are measured, never timed here.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { goalTable } from "../../../bench/goals.js";
import type { Measured } from "../../../bench/measure.js";
import { partRuns } from "../../../bench/options.js";

function measured(id: string, opsPerSecond: number, p50Ms: number): Measured {
  return {
    scenario: {
      id,
      title: id,
      run: () => Promise.resolve(),
      movedAtoB: () => 0,
      close: () => Promise.resolve(),
    },
    result: {
      name: id,
      ok: 100,
      errors: 0,
      elapsedMs: 1000,
      opsPerSecond,
      latency: { count: 100, p50Ms, p99Ms: p50Ms, maxMs: p50Ms },
      errorSamples: [],
    },
    benchCpuMsPerTx: 0.1,
    nodeCpuMsPerTx: 0.1,
    loadAverage: 1,
    breakdown: [],
    appendsPerFsync: Number.NaN,
    kafkaBranchesPerTransaction: Number.NaN,
  };
}

/** A TCP server on a free loopback port, answering nothing. */
async function listen(): Promise<{ address: string; close: () => Promise<void> }> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const bound = server.address();
  assert.ok(bound !== null && typeof bound === "object");
  return {
    address: `127.0.0.1:${bound.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function row(table: string[][], goal: string): string[] | undefined {
  return table.find((r) => r[0] === goal);
}

describe("transfer bench goals", () => {
  test("mixed and 3-node etcd goals are ratios of the same run", () => {
    const table = goalTable(
      [
        measured("A0", 1000, 10),
        measured("A.etcd", 800, 15),
        measured("M0", 100, 100),
        measured("M", 50, 200),
        measured("M1", 70, 150),
      ],
      100,
    );
    assert.deepEqual(row(table, "A/A0 through the 3-node etcd cluster, N clients"), [
      "A/A0 through the 3-node etcd cluster, N clients",
      "≥ 0.70x",
      "0.80x",
      "yes",
    ]);
    assert.deepEqual(row(table, "mixed M/M0 throughput, N clients (step by step)")?.slice(2), [
      "0.50x",
      "NO",
    ]);
    assert.deepEqual(row(table, "mixed M/M0 p50, N clients (step by step)")?.slice(1), [
      "≤ 1.67x",
      "2.00x",
      "NO",
    ]);
    assert.deepEqual(row(table, "mixed M1/M0 throughput, N clients (one request)")?.slice(2), [
      "0.70x",
      "yes",
    ]);
    assert.deepEqual(row(table, "mixed M1/M0 p50, N clients (one request)")?.slice(2), [
      "1.50x",
      "yes",
    ]);
  });

  test("a goal whose scenarios did not run says so", () => {
    const table = goalTable([measured("A0", 1000, 10)], Number.NaN);
    for (const goal of [
      "A/A0 through the 3-node etcd cluster, N clients",
      "mixed M/M0 throughput, N clients (step by step)",
    ]) {
      assert.deepEqual(row(table, goal)?.slice(2), ["not run", "-"], goal);
    }
  });

  test("auto runs a part when its services accept connections; on and off as given", async () => {
    const gone = await listen();
    await gone.close(); // released: nothing listens there now
    const closed = gone.address;
    const live = await listen();
    const listening = live.address;
    try {
      assert.equal(await partRuns("auto", [listening]), true);
      assert.equal(await partRuns("auto", [listening, closed]), false);
      assert.equal(await partRuns("on", [closed]), true);
      assert.equal(await partRuns("off", [listening]), false);
    } finally {
      await live.close();
    }
  });
});
