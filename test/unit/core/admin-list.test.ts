// Proves the admin list's paging: walking its ordered indexes page by page from each cursor
// gives exactly the whole list sorted as documented (in doubt first, then newest first, then
// xid) — for every page size and filter, with transactions in every state, live-only ones,
// prepared ones only the leader knows, and forgotten ones gone — and that a cursor stays
// valid while transactions begin, finish and are forgotten between pages: nothing present
// throughout is skipped, nothing is shown twice.
import type { BranchWork } from "../../../shared/branch-work.js";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  branchVote,
  Engine,
  type AdminFacts,
  type Input,
  type ListCursor,
  type ListQuery,
  type Output,
  type Reply,
} from "../../../coordinator/core/engine.js";
import type { LogIndex, Term, Xid } from "../../../coordinator/core/ids.js";
import { engineConfig } from "./harness.js";

const ops = { id: "ops", admin: true };
const svc = { id: "svc-a", admin: false };

/** An engine whose log takes every append at once and whose participants do as they are told. */
class Node {
  readonly engine = new Engine({ ...engineConfig(false), inFlightMax: 10_000 }, () => 0.5);
  nowMs = 1_000;
  private req = 1;
  private index = 0;
  /** Branch phase-2 calls fail for these xids (they stay in doubt). */
  readonly failing = new Set<Xid>();
  readonly xids: Xid[] = [];

  constructor() {
    this.engine.becomeLeader(1 as Term, this.nowMs);
  }

  feed(input: Input): Reply[] {
    const replies: Reply[] = [];
    const queue: Output[] = [...this.engine.handle(input, this.nowMs)];
    for (let o = queue.shift(); o; o = queue.shift()) {
      const next = this.react(o, replies);
      if (next) queue.push(...this.engine.handle(next, this.nowMs));
    }
    return replies;
  }

  private react(o: Output, replies: Reply[]): Input | undefined {
    switch (o.type) {
      case "reply":
        replies.push(o.reply);
        return undefined;
      case "append": {
        const entry = { index: ++this.index as LogIndex, term: 1 as Term, record: o.record };
        return { type: "applied", entry, proposal: o.proposal };
      }
      case "prepare":
        return { type: "voted", xid: o.xid, n: o.branch.n, vote: branchVote({ vote: "yes" }) };
      case "commit":
      case "rollback":
        return this.failing.has(o.xid)
          ? { type: "phase2-failed", xid: o.xid, n: o.branch.n, error: down }
          : { type: "phase2-done", xid: o.xid, n: o.branch.n, outcome: { outcome: "done" } };
      default:
        return undefined;
    }
  }

  /** A transaction of two branches, left in one of the states an operator may see. */
  txn(i: number, end: "active" | "prepared" | "committed" | "in-doubt" | "aborted"): void {
    const xid = `t${String(i).padStart(3, "0")}` as Xid;
    this.xids.push(xid);
    const call = { req: this.req++, principal: svc, xid };
    // Ones that finish here get a short deadline: a finished transaction is forgotten only
    // after its deadline (plus the clock skew) too, and the paging test below forgets some.
    const timeoutMs = end === "committed" || end === "aborted" ? 1_000 : 60_000;
    this.feed({ ...call, type: "begin", timeoutMs, labels: {} });
    for (const participant of ["pg-a", "redis-a"]) {
      const kind = participant === "pg-a" ? "postgres" : "redis";
      const payload: BranchWork =
        kind === "postgres"
          ? { kind: "statements", statements: [{ sql: `select '${xid}'` }] }
          : { kind: "ops", ops: [{ op: "set", key: xid, value: "1" }], preconditions: [] };
      this.feed({
        ...call,
        req: this.req++,
        type: "enlist",
        participant,
        kind,
        payload,
        payloadBytes: 10,
      });
    }
    if (end === "in-doubt") this.failing.add(xid);
    if (end === "prepared") this.feed({ ...call, req: this.req++, type: "prepare" });
    if (end === "committed" || end === "in-doubt")
      this.feed({ ...call, req: this.req++, type: "commit" });
    if (end === "aborted") this.feed({ ...call, req: this.req++, type: "abort" });
  }

  list(query: ListQuery): { facts: readonly AdminFacts[]; next?: ListCursor } {
    const [reply] = this.feed({ type: "admin-list", req: this.req++, principal: ops, query });
    assert.equal(reply?.kind, "page", JSON.stringify(reply));
    return reply;
  }

  /** The whole list the slow way: every xid's facts, sorted as the list documents. */
  everything(q: Omit<ListQuery, "limit" | "after">): AdminFacts[] {
    const all: AdminFacts[] = [];
    for (const xid of this.xids) {
      const [r] = this.feed({ type: "admin-facts", req: this.req++, principal: ops, xid });
      if (r?.kind !== "facts") continue;
      const f = r.facts;
      if (q.inDoubt !== undefined && f.inDoubt !== q.inDoubt) continue;
      if (q.state !== undefined && f.view.state !== q.state) continue;
      all.push(f);
    }
    return all.sort(
      (a, b) =>
        Number(b.inDoubt) - Number(a.inDoubt) ||
        b.beganAtMs - a.beganAtMs ||
        (a.view.xid < b.view.xid ? -1 : 1),
    );
  }

  pages(q: Omit<ListQuery, "limit" | "after">, limit: number, between = () => {}): Xid[] {
    const seen: Xid[] = [];
    let after: ListCursor | undefined;
    for (let guard = 0; guard < 1_000; guard++) {
      const page = this.list({ ...q, limit, ...(after ? { after } : {}) });
      assert.ok(page.facts.length <= limit);
      seen.push(...page.facts.map((f) => f.view.xid));
      if (!page.next) return seen;
      after = page.next;
      between();
    }
    throw new Error("the list never ended");
  }
}

const down = { code: "unavailable", message: "down", retryable: true };
const ends = ["active", "prepared", "committed", "in-doubt", "aborted"] as const;

function populated(count: number): Node {
  const node = new Node();
  for (let i = 0; i < count; i++) {
    // Several transactions share a begin time: the xid orders them.
    if (i % 3 === 0) node.nowMs += 7;
    node.txn(i, ends[(i * 7) % ends.length] ?? "active");
  }
  return node;
}

describe("admin list paging", () => {
  test("pages put together are the whole list, in order, for every size and filter", () => {
    const node = populated(60);
    const filters: Omit<ListQuery, "limit" | "after">[] = [
      {},
      { inDoubt: true },
      { inDoubt: false },
      { state: "prepared" },
      { state: "committed" },
      { state: "active" },
    ];
    for (const q of filters) {
      const expected = node.everything(q).map((f) => f.view.xid);
      assert.ok(expected.length > 0, JSON.stringify(q));
      for (const limit of [1, 2, 5, 7, 60, 100]) {
        assert.deepEqual(node.pages(q, limit), expected, `${JSON.stringify(q)} limit ${limit}`);
      }
    }
  });

  test("the last page has no cursor, also when it is exactly full", () => {
    const node = populated(10);
    const all = node.everything({});
    assert.equal(node.list({ limit: all.length }).next, undefined);
    assert.ok(node.list({ limit: all.length - 1 }).next);
  });

  test("a cursor survives transactions beginning, finishing and being forgotten", () => {
    const node = populated(40);
    const before = new Set(node.everything({}).map((f) => f.view.xid));
    let i = 1_000;
    const seen = node.pages({}, 3, () => {
      node.nowMs += 200; // past the retention time and deadline: finished ones are forgotten on the tick
      node.txn(i++, "active");
      node.feed({ type: "tick" });
    });
    const after = new Set(node.everything({}).map((f) => f.view.xid));
    assert.ok(
      [...before].some((xid) => !after.has(xid)),
      "nothing was forgotten meanwhile",
    );
    assert.ok(
      [...after].some((xid) => !before.has(xid)),
      "nothing began meanwhile",
    );
    assert.equal(new Set(seen).size, seen.length, `shown twice: ${seen.join(" ")}`);
    for (const xid of before) {
      if (after.has(xid)) assert.ok(seen.includes(xid), `${xid} skipped`);
    }
    // The indexes kept up: the list is still exactly the sorted whole.
    const sorted = node.everything({}).map((f) => f.view.xid);
    assert.deepEqual(node.pages({}, 7), sorted);
  });
});
