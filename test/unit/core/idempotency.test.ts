// Proves the engine's idempotency keys are bounded (issue 9, item 2): a flood of refused calls
// with unique keys (begins over the in-flight limit, enlists over a limit, another principal's
// commits) holds no key at all; a flood of accepted begins holds at most `idempotencyKeysMax`,
// the oldest dropped first; keys older than `idempotencyKeyAgeMsMax` on the engine's clock are
// dropped by a tick; a repeated begin still answers its transaction while its key is held; and
// a commit's key carried by its `preparing` record is restored from a snapshot of the table.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Engine, type Input, type Output } from "../../../coordinator/core/engine.js";
import type { LogIndex, Term, Xid } from "../../../coordinator/core/ids.js";
import { engineConfig } from "./harness.js";

const owner = { id: "svc-a", admin: false };
const keysMax = 100;
const ageMsMax = 60_000;

function leader(inFlightMax: number): {
  engine: Engine;
  feed: (i: Input, nowMs?: number) => Output[];
} {
  const engine = new Engine(
    {
      ...engineConfig(false),
      inFlightMax,
      idempotencyKeysMax: keysMax,
      idempotencyKeyAgeMsMax: ageMsMax,
    },
    () => 0.5,
  );
  engine.becomeLeader(1 as Term, 1_000);
  return { engine, feed: (i, nowMs = 1_000) => engine.handle(i, nowMs) };
}

let req = 1;
const begin = (xid: string, key: string): Input => ({
  type: "begin",
  req: req++,
  principal: owner,
  xid: xid as Xid,
  timeoutMs: 10 * ageMsMax,
  labels: {},
  idem: { key, fingerprint: "begin" },
});

function replyOf(out: Output[]): string {
  const o = out.find((x) => x.type === "reply");
  assert.ok(o?.type === "reply", "a reply");
  return o.reply.kind === "error" ? o.reply.code : o.reply.kind;
}

describe("idempotency keys are bounded", () => {
  test("refused begins with unique keys hold no key", () => {
    const { engine, feed } = leader(1);
    assert.equal(replyOf(feed(begin("x0", "k0"))), "txn");
    assert.equal(engine.keysHeld(), 1);
    for (let i = 1; i <= 10_000; i++) {
      assert.equal(replyOf(feed(begin(`x${i}`, `k${i}`))), "too-many-transactions");
    }
    assert.equal(engine.keysHeld(), 1);
  });

  test("refused enlists and another principal's commits hold no key", () => {
    const { engine, feed } = leader(10);
    feed(begin("x1", "b1"));
    for (let i = 0; i < 1_000; i++) {
      const out = feed({
        type: "enlist",
        req: req++,
        principal: owner,
        xid: "x1" as Xid,
        participant: "pg-a",
        kind: "postgres",
        payload: { kind: "statements", statements: [] },
        payloadBytes: 1 << 21, // over payloadBytesPerTxnMax
        idem: { key: `e${i}`, fingerprint: `e${i}` },
      });
      assert.equal(replyOf(out), "payload-too-large");
      const commit = feed({
        type: "commit",
        req: req++,
        principal: { id: "svc-b", admin: false },
        xid: "x1" as Xid,
        idem: { key: `c${i}`, fingerprint: "commit x1" },
      });
      assert.equal(replyOf(commit), "forbidden");
    }
    assert.equal(engine.keysHeld(), 1);
  });

  test("accepted begins hold at most idempotencyKeysMax keys, oldest dropped first", () => {
    const { engine, feed } = leader(10_000);
    for (let i = 0; i < 1_000; i++) feed(begin(`x${i}`, `k${i}`));
    assert.equal(engine.keysHeld(), keysMax);
    // The newest key still answers its transaction; the oldest was dropped (a new one begins).
    const newest = feed(begin("y1", "k999"));
    assert.ok(newest[0]?.type === "reply" && newest[0].reply.kind === "txn");
    assert.equal(newest[0].reply.view.xid, "x999");
    assert.equal(newest[0].reply.created, false);
    const oldest = feed(begin("y2", "k0"));
    assert.ok(oldest[0]?.type === "reply" && oldest[0].reply.kind === "txn");
    assert.equal(oldest[0].reply.view.xid, "y2");
  });

  test("keys older than idempotencyKeyAgeMsMax are dropped on a tick", () => {
    const { engine, feed } = leader(10_000);
    for (let i = 0; i < 50; i++) feed(begin(`x${i}`, `k${i}`));
    feed(begin("x50", "k50"), 1_000 + ageMsMax / 2);
    feed({ type: "tick" }, 1_000 + ageMsMax);
    assert.equal(engine.keysHeld(), 1);
    feed({ type: "tick" }, 1_000 + ageMsMax + ageMsMax / 2);
    assert.equal(engine.keysHeld(), 0);
  });

  test("a commit's logged key comes back from a snapshot", () => {
    const { engine, feed } = leader(10);
    feed(begin("x1", "b1"));
    for (const participant of ["pg-a", "pg-b"]) {
      feed({
        type: "enlist",
        req: req++,
        principal: owner,
        xid: "x1" as Xid,
        participant,
        kind: "postgres",
        payload: { kind: "statements", statements: [] },
        payloadBytes: 1,
      });
    }
    const commit = (xid: string): Input => ({
      type: "commit",
      req: req++,
      principal: owner,
      xid: xid as Xid,
      idem: { key: "c1", fingerprint: `commit ${xid}` },
    });
    const append = feed(commit("x1")).find((o) => o.type === "append");
    assert.ok(append?.type === "append");
    feed({
      type: "applied",
      entry: { index: 1 as LogIndex, term: 1 as Term, record: append.record },
      proposal: append.proposal,
    });

    const next = new Engine(engineConfig(false), () => 0.5);
    next.loadSnapshot(engine.table.snapshot());
    next.becomeLeader(2 as Term, 2_000);
    assert.equal(replyOf(next.handle(commit("x2"), 2_000)), "idempotency-key-reused");
  });
});
