/**
 * Proves that xids carry their begin time (so a leader can tell an xid too young to have been
 * forgotten — presumed abort — from one that may have been forgotten), and that branch ids
 * parse back only for their own cluster.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  branchIdOf,
  newXid,
  parseBranchId,
  xidBeganAtMs,
  type BranchNo,
  type ClusterId,
  type Xid,
} from "../../../coordinator/core/ids.js";

test("an xid's begin time round-trips and sorts with time", () => {
  const a = newXid(1_700_000_000_000, "00ff");
  const b = newXid(1_700_000_000_001, "0000");
  assert.equal(xidBeganAtMs(a), 1_700_000_000_000);
  assert.ok(a < b);
  assert.match(a, /^[A-Za-z0-9_-]{1,64}$/);
});

test("an xid not made by newXid has no begin time", () => {
  assert.equal(xidBeganAtMs("x1" as Xid), undefined);
  assert.equal(xidBeganAtMs("ABCDEFGHIJ" as Xid), undefined);
});

test("branch ids parse back for their cluster only", () => {
  const c = "c_1%" as ClusterId;
  const id = branchIdOf(c, "x:y" as Xid, 3 as BranchNo);
  assert.deepEqual(parseBranchId(c, id), { xid: "x:y", n: 3 });
  assert.equal(parseBranchId("c_1" as ClusterId, id), undefined);
  assert.equal(parseBranchId("c" as ClusterId, id), undefined);
});
