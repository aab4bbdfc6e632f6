// Proves the seam of linearizable reads: a read the API sends through the driver's one `call`
// (a view, an operator's facts, a list page) reaches the engine only once `readBarrier` has
// resolved, while a write is not held behind it; without a barrier (the local log) reads are
// answered at once.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Engine, type Principal, type Reply } from "../../../coordinator/core/engine.js";
import type { Xid } from "../../../coordinator/core/ids.js";
import type { LogRecord } from "../../../coordinator/core/records.js";
import { Driver } from "../../../coordinator/driver/driver.js";
import { parseFailpoints } from "../../../coordinator/failpoints/failpoints.js";
import { LocalDecisionLog } from "../../../coordinator/log/local-decision-log.js";
import { MemoryDisk } from "../../../coordinator/log/memory-storage.js";
import { createLogger } from "../../../coordinator/telemetry/logger.js";
import { createMetrics } from "../../../coordinator/telemetry/metrics.js";
import { engineConfig } from "../core/harness.js";

const svc: Principal = { id: "svc-a", admin: false };
const ops: Principal = { id: "ops", admin: true };
const drivers: Driver[] = [];

after(() => drivers.forEach((d) => d.stop()));

async function started(readBarrier?: () => Promise<void>): Promise<Driver> {
  const log = await LocalDecisionLog.open<LogRecord>({
    storage: new MemoryDisk().storage(),
    dir: "/log",
  });
  const driver = new Driver({
    engine: new Engine(engineConfig(false), () => 0.5),
    log,
    participants: new Map(),
    // Nothing here has a heuristic outcome to record.
    audit: { append: () => Promise.reject(new Error("no audit in this test")) },
    logger: createLogger("silent", "n1"),
    metrics: createMetrics(),
    failpoints: parseFailpoints(undefined),
    now: () => Date.now(),
    tickMs: 60_000,
    snapshotEveryEntries: 1_000,
    participantCallTimeoutMs: 1_000,
    recoveryVerifyMs: 100,
    recoveryIntervalMs: 60_000,
    ...(readBarrier ? { readBarrier } : {}),
  });
  drivers.push(driver);
  await driver.start();
  return driver;
}

/** Whether `p` has settled by the time the event loop has turned a few times. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
}

const stateOf = (r: Reply) => (r.kind === "txn" ? r.view.state : r.kind);

describe("the read barrier", () => {
  test("reads wait for it; writes do not", async () => {
    let open = () => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    const driver = await started(() => gate);
    const xid = "0000000001aa" as Xid;
    const begun = await driver.call({
      type: "begin",
      principal: svc,
      xid,
      timeoutMs: 10_000,
      labels: {},
    });
    assert.equal(stateOf(begun), "active", "a write goes in without the barrier");

    const view = driver.call({ type: "view", principal: svc, xid });
    const page = driver.call({ type: "admin-list", principal: ops, query: { limit: 10 } });
    assert.equal(await settled(view), false, "the view was answered before the barrier");
    assert.equal(await settled(page), false, "the list was answered before the barrier");
    // Meanwhile a write goes in: the read, fed after the barrier, sees it.
    assert.equal(stateOf(await driver.call({ type: "abort", principal: svc, xid })), "aborted");
    open();
    assert.equal(stateOf(await view), "aborted");
    assert.equal((await page).kind, "page");
  });

  test("without a barrier, reads are answered at once", async () => {
    const driver = await started();
    const reply = driver.call({ type: "view", principal: svc, xid: "0000000001bb" as Xid });
    assert.equal(await settled(reply), true);
    assert.equal((await reply).kind, "error");
  });
});
