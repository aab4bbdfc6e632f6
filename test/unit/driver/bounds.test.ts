// Proves that the driver's two maps are bounded (coordinator/config/limits.ts): with
// `repliesWaitingMax` replies awaited, the next call is answered `unavailable` at once (and is
// served again once replies are out); with `appendsInFlightMax` appends in flight or held for
// in-order apply, the next append is refused and its caller hears a typed failure. It also
// shows that entries made durable out of order are applied in log order. The engine is the
// real one; the log is a fake that holds every append until the test releases it.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { Engine, type Reply } from "../../../coordinator/core/engine.js";
import type { Xid } from "../../../coordinator/core/ids.js";
import type { LogRecord } from "../../../coordinator/core/records.js";
import { Driver, type DriverBounds } from "../../../coordinator/driver/driver.js";
import { parseFailpoints } from "../../../coordinator/failpoints/failpoints.js";
import type { AppendResult, DecisionLog } from "../../../coordinator/log/decision-log.js";
import { createMetrics } from "../../../coordinator/telemetry/metrics.js";
import { engineConfig } from "../core/harness.js";

/** A log that numbers appends as they come and makes each durable when the test says so. */
class HeldLog implements DecisionLog<LogRecord> {
  private last = 0;
  readonly held = new Map<number, { record: LogRecord; release: () => void }>();

  append(records: readonly LogRecord[]): Promise<AppendResult> {
    const index = ++this.last;
    const record = records[0];
    assert.ok(record && records.length === 1, "the driver appends one record at a time");
    return new Promise((resolve) => {
      const release = () => resolve({ firstIndex: index, lastIndex: index, term: 1 });
      this.held.set(index, { record, release });
    });
  }
  /** Makes append `index` durable, once the driver has made it (it does after a failpoint). */
  async release(index: number): Promise<void> {
    for (let i = 0; i < 100 && !this.held.has(index); i++) await new Promise(setImmediate);
    const h = this.held.get(index);
    assert.ok(h, `no append ${index} held`);
    this.held.delete(index);
    h.release();
  }
  replay = () => Promise.resolve({ entries: [] });
  saveSnapshot = () => Promise.resolve();
  truncateSuffix = () => Promise.resolve();
  lastIndex = () => this.last;
  refusal = () => undefined;
  close = () => Promise.resolve();
}

const principal = { id: "svc", admin: false };

async function started(bounds: DriverBounds) {
  const engine = new Engine(engineConfig(false), () => 0.5);
  const log = new HeldLog();
  const driver = new Driver({
    engine,
    log,
    // Nothing here has a heuristic outcome to record.
    audit: { append: () => Promise.reject(new Error("no audit in this test")) },
    participants: new Map(),
    logger: pino({ level: "silent" }),
    metrics: createMetrics(),
    failpoints: parseFailpoints(undefined),
    now: () => Date.now(),
    tickMs: 60_000,
    snapshotEveryEntries: 1_000_000,
    participantCallTimeoutMs: 1000,
    recoveryVerifyMs: 0,
    recoveryIntervalMs: 3_600_000,
    bounds,
  });
  await driver.start();
  let n = 0;
  /** Begins a transaction with no branches: its abort waits for its `decide` record. */
  const begun = async (): Promise<Xid> => {
    const xid = `x${++n}` as Xid;
    const reply = await driver.call({
      type: "begin",
      principal,
      xid,
      timeoutMs: 60_000,
      labels: {},
    });
    assert.equal(reply.kind, "txn");
    return xid;
  };
  const abort = (xid: Xid) => driver.call({ type: "abort", principal, xid });
  return { engine, log, driver, begun, abort };
}

/** Whether `p` has settled by the time pending callbacks ran. */
async function settled(p: Promise<Reply>): Promise<boolean> {
  const mark = Symbol("pending");
  const first = await Promise.race([p, new Promise((r) => setTimeout(() => r(mark), 20))]);
  return first !== mark;
}

const errorCode = (r: Reply) => (r.kind === "error" ? r.code : r.kind);

describe("driver bounds", () => {
  test("replies waiting: the call over the bound is answered unavailable at once", async () => {
    const { log, driver, begun, abort } = await started({
      repliesWaitingMax: 2,
      appendsInFlightMax: 100,
    });
    try {
      const [a, b, c] = [await begun(), await begun(), await begun()];
      const waiting = [abort(a), abort(b)];
      assert.equal(await settled(waiting[0]!), false, "an abort waits for its record");
      const refused = await abort(c);
      assert.equal(errorCode(refused), "unavailable");
      assert.deepEqual(refused.kind === "error" && refused.details, {
        limit: "driverRepliesWaitingMax",
        max: 2,
      });
      assert.equal(log.held.size, 2, "the refused call never reached the engine");
      for (const index of [...log.held.keys()]) await log.release(index);
      for (const r of await Promise.all(waiting)) assert.equal(r.kind, "txn");
      // Room again: the refused call is served when repeated.
      const again = abort(c);
      await log.release(3);
      assert.equal((await again).kind, "txn");
    } finally {
      driver.stop();
    }
  });

  test("appends in flight: the append over the bound is refused; entries apply in log order", async () => {
    const { engine, log, driver, begun, abort } = await started({
      repliesWaitingMax: 100,
      appendsInFlightMax: 2,
    });
    try {
      const [a, b, c] = [await begun(), await begun(), await begun()];
      const first = abort(a);
      const second = abort(b);
      await settled(second);
      const refused = await abort(c);
      assert.equal(errorCode(refused), "outcome-unknown");
      assert.match(refused.kind === "error" ? refused.message : "", /driverAppendsInFlightMax/);
      assert.equal(log.held.size, 2, "the refused append never reached the log");
      // Durable out of order: entry 2 is held until entry 1 is applied.
      await log.release(2);
      assert.equal(await settled(second), false, "entry 2 waits for entry 1");
      assert.equal(engine.table.appliedIndex, 0);
      // Still at the bound (one append in flight, one entry held): another append is refused.
      assert.equal(errorCode(await abort(c)), "outcome-unknown");
      await log.release(1);
      for (const r of await Promise.all([first, second])) assert.equal(r.kind, "txn");
      assert.equal(engine.table.appliedIndex, 2);
      const again = abort(c);
      await log.release(3);
      assert.equal((await again).kind, "txn");
    } finally {
      driver.stop();
    }
  });
});
