// Proves that merging a second enlist into a participant's branch appends its work in order,
// keeps equal scalar fields, and refuses different kinds or conflicting fields.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mergePayloads } from "../../../coordinator/core/payload.js";

describe("mergePayloads", () => {
  test("work arrays are appended in order", () => {
    const first = { kind: "sql", statements: [{ sql: "a" }], expect: 1 };
    const second = { kind: "sql", statements: [{ sql: "b" }, { sql: "c" }], expect: 1 };
    assert.deepEqual(mergePayloads(first, second), {
      ok: true,
      payload: { kind: "sql", statements: [{ sql: "a" }, { sql: "b" }, { sql: "c" }], expect: 1 },
    });
    assert.deepEqual(first.statements, [{ sql: "a" }], "the first payload is left untouched");
  });

  test("fields only the second has are added", () => {
    const r = mergePayloads(
      { kind: "redis", ops: [{ op: "set" }] },
      { kind: "redis", ops: [], preconditions: [{ key: "k", exists: true }] },
    );
    assert.deepEqual(r, {
      ok: true,
      payload: { kind: "redis", ops: [{ op: "set" }], preconditions: [{ key: "k", exists: true }] },
    });
  });

  test("another kind of work is refused", () => {
    const r = mergePayloads({ kind: "sql", statements: [] }, { kind: "redis", ops: [] });
    assert.equal(r.ok, false);
  });

  test("a conflicting scalar field is refused", () => {
    const r = mergePayloads({ kind: "sql", database: "a" }, { kind: "sql", database: "b" });
    assert.deepEqual(r, { ok: false, why: "field database differs between the two enlists" });
  });

  test("non-objects are refused", () => {
    assert.equal(mergePayloads([], { kind: "sql" }).ok, false);
    assert.equal(mergePayloads({ kind: "sql" }, null).ok, false);
  });
});
