/**
 * Proves the NOSPACE path on a throwaway one-member etcd with a tiny backend quota: once etcd
 * raises its NOSPACE alarm, appends reject with the typed EtcdNoSpaceError (the node can go
 * not-ready), nothing acknowledged is lost (a replay, still allowed under the alarm, returns
 * every acknowledged record and none of the rejected ones), and later appends are refused
 * with the same typed error instead of hanging.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { EtcdNoSpaceError } from "../../../coordinator/log/etcd/errors.js";
import { freePort } from "../../support/free-port.js";
import { connect, etcdBinary, ensureEtcd, TestCluster } from "./helpers.js";

describe("etcd decision log under NOSPACE", () => {
  let etcd: ChildProcess;
  let dataDir: string;
  let endpoint: string;
  let cluster: TestCluster;

  before(ensureEtcd); // builds the binary if this machine has none yet
  before(async () => {
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    dataDir = mkdtempSync(path.join(os.tmpdir(), "verdict-etcd-nospace-"));
    endpoint = `127.0.0.1:${clientPort}`;
    etcd = spawn(
      etcdBinary(),
      [
        `--data-dir=${dataDir}`,
        `--listen-client-urls=http://${endpoint}`,
        `--advertise-client-urls=http://${endpoint}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
        "--quota-backend-bytes=4194304",
        "--log-level=error",
      ],
      { stdio: "ignore" },
    );
    // Should this process end without running `after`, the throwaway etcd goes with it.
    process.once("exit", () => etcd.kill("SIGKILL"));
    for (const signal of ["SIGTERM", "SIGINT"] as const)
      process.once(signal, () => process.exit(1));
    const probe = connect([endpoint]);
    try {
      for (let i = 0; ; i++) {
        try {
          await probe.maintenance.status();
          break;
        } catch (err) {
          if (i >= 100) throw err;
          await sleep(100);
        }
      }
    } finally {
      probe.close();
    }
    cluster = new TestCluster([endpoint]);
  });
  after(async () => {
    await cluster.close().catch(() => undefined);
    etcd.kill("SIGKILL");
    await sleep(200);
    rmSync(dataDir, { recursive: true, force: true });
  });

  test("appends over the quota reject EtcdNoSpaceError; every acknowledged one replays", async () => {
    const a = cluster.node("a");
    assert.ok(await a.leadership.campaign());
    const log = await cluster.openLog(a);
    const big = "x".repeat(200_000);
    const acknowledged: number[] = [];
    let refusal: unknown;
    for (let i = 0; i < 100 && refusal === undefined; i++) {
      await log.append([`${i}:${big}`]).then(
        (r) => acknowledged.push(r.firstIndex),
        (err: unknown) => (refusal = err),
      );
    }
    assert.ok(refusal instanceof EtcdNoSpaceError, `refused with ${String(refusal)}`);
    assert.ok(acknowledged.length > 5);
    await assert.rejects(log.append(["small"]), EtcdNoSpaceError, "refused again, no hang");
    assert.equal(log.lastIndex(), acknowledged.length);

    const replayed = await log.replay();
    assert.deepEqual(
      replayed.entries.map((e) => e.index),
      acknowledged,
    );
    assert.deepEqual(
      replayed.entries.map((e) => e.record.split(":")[0]),
      acknowledged.map((index) => String(index - 1)),
    );
  });
});
