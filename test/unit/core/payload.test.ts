// Proves that merging a second enlist into a participant's branch appends its work in order
// (statements; ops and preconditions; messages), leaves the first enlist's work untouched, and
// refuses work of another kind or any work joining a service-prepared branch.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mergeWork } from "../../../coordinator/core/payload.js";
import type { BranchWork } from "../../../shared/branch-work.js";

describe("mergeWork", () => {
  test("statements are appended in order; the first work is left untouched", () => {
    const first: BranchWork = { kind: "statements", statements: [{ sql: "a" }] };
    const second: BranchWork = { kind: "statements", statements: [{ sql: "b" }, { sql: "c" }] };
    assert.deepEqual(mergeWork(first, second), {
      ok: true,
      work: { kind: "statements", statements: [{ sql: "a" }, { sql: "b" }, { sql: "c" }] },
    });
    assert.deepEqual(first.statements, [{ sql: "a" }], "the first work is left untouched");
  });

  test("ops and preconditions are both appended", () => {
    const r = mergeWork(
      { kind: "ops", ops: [{ op: "del", key: "a" }], preconditions: [] },
      { kind: "ops", ops: [{ op: "del", key: "b" }], preconditions: [{ key: "k", exists: true }] },
    );
    assert.deepEqual(r, {
      ok: true,
      work: {
        kind: "ops",
        ops: [
          { op: "del", key: "a" },
          { op: "del", key: "b" },
        ],
        preconditions: [{ key: "k", exists: true }],
      },
    });
  });

  test("messages are appended in order", () => {
    const r = mergeWork(
      { kind: "messages", messages: [{ topic: "t", value: "1" }] },
      { kind: "messages", messages: [{ topic: "t", value: "2" }] },
    );
    assert.deepEqual(r, {
      ok: true,
      work: {
        kind: "messages",
        messages: [
          { topic: "t", value: "1" },
          { topic: "t", value: "2" },
        ],
      },
    });
  });

  test("another kind of work is refused", () => {
    const r = mergeWork(
      { kind: "statements", statements: [{ sql: "a" }] },
      { kind: "ops", ops: [{ op: "del", key: "a" }], preconditions: [] },
    );
    assert.deepEqual(r, { ok: false, why: "cannot add ops work to a statements branch" });
  });

  test("nothing joins a service-prepared branch", () => {
    const r = mergeWork({ kind: "service-prepared" }, { kind: "service-prepared" });
    assert.equal(r.ok, false);
  });
});
