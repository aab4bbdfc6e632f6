// Proves the transaction table: a decision is compare-and-set (the first `decide` holds, G2),
// acknowledgements and forgetting apply as recorded, and a snapshot restored and then fed the
// rest of the log equals replaying the whole log; `prepareOnly` and the idempotency keys of a
// `preparing` or `decide` record are kept (and survive a snapshot), an older record without
// them reading as not prepare-only with no keys; the presumed-abort watermark is the largest
// begin time forgotten, kept by a snapshot (unknown after a snapshot older than it).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  durableState,
  heuristicOf,
  TxnTable,
  type Entry,
} from "../../../coordinator/core/table.js";
import type { BranchSpec, LogRecord, TxnHeader } from "../../../coordinator/core/records.js";
import type { BranchId, BranchNo, LogIndex, Term, Xid } from "../../../coordinator/core/ids.js";

const header = (xid: string): TxnHeader => ({
  xid: xid as Xid,
  principal: "svc-a",
  beganAtMs: 1,
  deadlineMs: 100,
  labels: { order: "42" },
});
const branch = (xid: string, n: number, participant: string): BranchSpec => ({
  n: n as BranchNo,
  branchId: `c1:${xid}:${n}` as BranchId,
  participant,
  kind: "postgres",
  payload: { kind: "statements", statements: [{ sql: `w${n}` }] },
});

const records: LogRecord[] = [
  {
    type: "preparing",
    v: 1,
    txn: header("x1"),
    branches: [branch("x1", 1, "pg-a"), branch("x1", 2, "pg-b")],
    onePhase: false,
    atMs: 10,
  },
  {
    type: "decide",
    v: 1,
    xid: "x1" as Xid,
    decision: "commit",
    code: "all-voted-yes",
    reason: "yes",
    atMs: 11,
  },
  {
    type: "decide",
    v: 1,
    xid: "x1" as Xid,
    decision: "abort",
    code: "deadline-passed",
    reason: "late",
    atMs: 12,
  },
  {
    type: "decide",
    v: 1,
    xid: "x2" as Xid,
    decision: "abort",
    code: "client-abort",
    reason: "client",
    txn: header("x2"),
    branches: [branch("x2", 1, "pg-a")],
    atMs: 13,
  },
  { type: "acks", v: 1, acks: [{ xid: "x1" as Xid, n: 1 as BranchNo, outcome: "done" }], atMs: 14 },
  {
    type: "preparing",
    v: 1,
    txn: header("x3"),
    branches: [branch("x3", 1, "pg-a")],
    onePhase: true,
    atMs: 15,
  },
  {
    type: "acks",
    v: 1,
    acks: [
      { xid: "x1" as Xid, n: 2 as BranchNo, outcome: "done" },
      { xid: "x2" as Xid, n: 1 as BranchNo, outcome: "heuristic-commit", detail: "a DBA" },
    ],
    atMs: 16,
  },
  { type: "forget", v: 1, xids: ["x1" as Xid], atMs: 17 },
];
const entries: Entry[] = records.map((record, i) => ({
  index: (i + 1) as LogIndex,
  term: 1 as Term,
  record,
}));

function replayed(upTo = entries.length): TxnTable {
  const t = new TxnTable();
  for (const e of entries.slice(0, upTo)) t.apply(e);
  return t;
}

describe("transaction table", () => {
  test("the first decide holds; a later one loses and changes nothing", () => {
    const t = replayed(3);
    const x1 = t.get("x1" as Xid);
    assert.equal(x1?.decision?.decision, "commit");
    assert.equal(x1?.decision?.index, 2);
    const loser = new TxnTable();
    loser.apply(entries[0] as Entry);
    assert.deepEqual(loser.apply(entries[1] as Entry), { xid: "x1", won: true });
    assert.deepEqual(loser.apply(entries[2] as Entry), { xid: "x1", won: false });
  });

  test("states follow the acknowledgements; a branch that went its own way is heuristic", () => {
    const t = replayed(7);
    assert.equal(durableState(t.get("x1" as Xid) as never), "committed");
    const x2 = t.get("x2" as Xid);
    assert.ok(x2);
    assert.equal(durableState(x2), "aborted");
    assert.equal(heuristicOf(x2), "heuristic-commit");
    assert.equal(durableState(t.get("x3" as Xid) as never), "preparing");
  });

  test("forget removes the transaction", () => {
    const t = replayed();
    assert.equal(t.get("x1" as Xid), undefined);
    assert.equal(t.size, 2);
  });

  test("entries apply in order only", () => {
    const t = replayed(2);
    assert.throws(() => t.apply(entries[0] as Entry));
  });

  test("prepare-only and logged keys are kept, also in a snapshot; older records lack them", () => {
    const key = (k: string) => ({ principal: "svc-a", key: k, fingerprint: `commit ${k}` });
    const t = new TxnTable();
    t.apply({
      index: 1 as LogIndex,
      term: 1 as Term,
      record: { ...(records[0] as LogRecord), prepareOnly: true, keys: [key("p1")] } as LogRecord,
    });
    t.apply({
      index: 2 as LogIndex,
      term: 1 as Term,
      record: { ...(records[1] as LogRecord), keys: [key("c1")] } as LogRecord,
    });
    const expected = [
      { ...key("p1"), atMs: 10 },
      { ...key("c1"), atMs: 11 },
    ];
    for (const table of [t, TxnTable.restore(t.snapshot())]) {
      const x1 = table.get("x1" as Xid);
      assert.equal(x1?.prepareOnly, true);
      assert.deepEqual(x1?.keys, expected);
    }
    const older = replayed(1).get("x1" as Xid);
    assert.equal(older?.prepareOnly ?? false, false);
    assert.equal(older?.keys, undefined);
  });

  for (let at = 0; at <= entries.length; at++) {
    test(`snapshot at ${at}, restored, then the rest applied, equals replaying all`, () => {
      const restored = TxnTable.restore(replayed(at).snapshot());
      assert.equal(restored.appliedIndex, at);
      for (const e of entries.slice(at)) restored.apply(e);
      const full = replayed();
      assert.deepEqual([...restored.all()], [...full.all()]);
      assert.deepEqual(restored.snapshot(), full.snapshot());
    });
  }
});

describe("the presumed-abort watermark", () => {
  test("is the largest begin time forgotten, survives a snapshot, and is unknown after an older one", () => {
    const t = replayed();
    // x1 (began at 1) was forgotten by a record written before the field existed.
    assert.equal(t.forgetWatermarkMs, 1);
    const forget: LogRecord = {
      type: "forget",
      v: 1,
      xids: ["gone" as Xid],
      beganAtMsMax: 40,
      atMs: 18,
    };
    t.apply({ index: (entries.length + 1) as LogIndex, term: 1 as Term, record: forget });
    assert.equal(t.forgetWatermarkMs, 40);
    assert.equal(TxnTable.restore(t.snapshot()).forgetWatermarkMs, 40);
    const older = JSON.parse(new TextDecoder().decode(t.snapshot())) as Record<string, unknown>;
    delete older.forgetWatermarkMs;
    const restored = TxnTable.restore(new TextEncoder().encode(JSON.stringify(older)));
    assert.equal(restored.forgetWatermarkMs, undefined);
  });
});
