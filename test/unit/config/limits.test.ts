// Proves that the limits module asserts the relations between limits: the shipped fixed limits
// satisfy every relation, and breaking any one of them is reported by name; a record at the
// configured payload limit fits `recordBytesMax`, and a full forget batch fits any record; the
// configurable branch-work limits stop at the ceilings participants re-validate with; the API's
// work schemas are the shared ones (shared/branch-work.ts), not a copy.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  apiLimitsSchema,
  branchWorkCeilings,
  fixedLimits,
  fixedRelationProblems,
  type FixedLimits,
  participantInFlightMax,
  recordBytesMax,
} from "../../../coordinator/config/limits.js";
import { z } from "zod";
import { buildSchemas } from "../../../coordinator/api/contract/schemas.js";
import { branchWorkSchemas } from "../../../shared/branch-work.js";

describe("limits", () => {
  test("the shipped fixed limits satisfy every relation", () => {
    assert.deepEqual(fixedRelationProblems(), []);
  });

  test("breaking a relation is reported by name", () => {
    const cases: [Partial<FixedLimits>, RegExp][] = [
      [{ forgetBatchMax: 10_000 }, /forgetBatchMax/],
      [{ recordBytesReadMax: 1024 }, /recordBytesReadMax/],
      [{ walPendingAppendsMax: fixedLimits.driverAppendsInFlightMax + 1 }, /walPendingAppendsMax/],
      [{ driverRepliesWaitingMax: 100 }, /driverRepliesWaitingMax/],
      [{ acksBytesPerRecordMax: 1024 }, /one ack at its largest/],
      [
        { acksBytesPerRecordMax: fixedLimits.recordOverheadBytes },
        /acksBytesPerRecordMax \+ 1 KiB/,
      ],
    ];
    for (const [change, named] of cases) {
      const problems = fixedRelationProblems({ ...fixedLimits, ...change });
      assert.equal(problems.length, 1, JSON.stringify(change));
      assert.match(problems[0]!, named);
    }
  });

  test("a record holds a transaction's work at its limit, and a full forget batch", () => {
    const limits = apiLimitsSchema.parse({ payloadBytesPerTransactionMax: 1 });
    const forget = JSON.stringify({
      type: "forget",
      v: 1,
      xids: Array.from({ length: fixedLimits.forgetBatchMax }, () =>
        "x".repeat(fixedLimits.xidCharsMax),
      ),
      atMs: Date.now(),
    });
    assert.ok(forget.length <= recordBytesMax(limits), `${forget.length} bytes`);
    assert.equal(recordBytesMax({ payloadBytesPerTransactionMax: 1000 }), 2000 + 128 * 1024);
  });

  test("a participant's in-flight bound follows the node's, capped", () => {
    assert.equal(participantInFlightMax({ inFlightTransactionsMax: 256 }), 256);
    assert.equal(
      participantInFlightMax({ inFlightTransactionsMax: 10_000_000 }),
      fixedLimits.participantInFlightMax,
    );
  });

  test("configurable branch-work limits stop at the participants' ceilings", () => {
    for (const [name, ceiling] of Object.entries(branchWorkCeilings)) {
      assert.ok(apiLimitsSchema.safeParse({ [name]: ceiling, bodyBytesMax: 64 << 20 }).success);
      assert.equal(apiLimitsSchema.safeParse({ [name]: ceiling + 1 }).success, false, name);
    }
  });

  test("the API's work schemas are the shared ones, under the configured limits", () => {
    const limits = apiLimitsSchema.parse({ statementsPerBranchMax: 7, keyCharsMax: 9 });
    const api = buildSchemas(limits);
    const shared = branchWorkSchemas(limits);
    for (const name of ["statement", "redisOp", "redisPrecondition", "kafkaMessage"] as const) {
      assert.deepEqual(z.toJSONSchema(api[name]), z.toJSONSchema(shared[name]), name);
    }
    assert.deepEqual(
      z.toJSONSchema(api.pgStatementsBranch.shape.statements),
      z.toJSONSchema(shared.statements),
    );
  });
});
