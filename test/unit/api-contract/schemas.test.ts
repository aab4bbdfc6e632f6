// Proves the API contract's schemas accept the docs/architecture.md §8 examples and reject
// malformed input: wrong types, unknown fields, two branch kinds at once, and every
// configurable bound (one over the limit rejected, exactly at the limit accepted).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { apiLimitsSchema, defaultApiLimits } from "../../../coordinator/config/limits.js";
import type { ApiLimits } from "../../../coordinator/config/limits.js";
import {
  branchPayloadBytes,
  buildSchemas,
  defaultSchemas as s,
} from "../../../coordinator/api/contract/schemas.js";
import {
  ApiError,
  errorBody,
  errorCatalogue,
  errorCodes,
  validationFailed,
} from "../../../coordinator/api/contract/errors.js";

const deadline = "2030-01-01T00:00:30.000Z";
const branchId = "c1:tx-42:1";

/** §5 examples, verbatim. */
const examples = {
  begin: { timeoutMs: 30000, labels: { order: "42" } },
  pgStatements: {
    participant: "pg-orders",
    statements: [
      { sql: "update orders set paid = $1 where id = $2", params: [10, 1], expectRows: 1 },
    ],
  },
  pgServicePrepared: { participant: "pg-orders", servicePrepared: true },
  redis: {
    participant: "redis-main",
    ops: [{ op: "incrby", key: "{acct}:7", by: 10 }],
    preconditions: [{ key: "{acct}:7", exists: true }],
  },
  kafka: {
    participant: "kafka-events",
    messages: [{ topic: "transfers", key: "7", value: '{"amount":10}' }],
  },
};

function accepts(schema: z.ZodType, value: unknown): void {
  const result = schema.safeParse(value);
  assert.ok(
    result.success,
    `expected to accept ${JSON.stringify(value)}: ${result.error?.message}`,
  );
}

function rejects(schema: z.ZodType, value: unknown, why: string): void {
  assert.equal(schema.safeParse(value).success, false, `expected to reject (${why})`);
}

describe("limits", () => {
  test("defaults are valid and consistent", () => {
    assert.deepEqual(apiLimitsSchema.parse({}), defaultApiLimits);
    assert.ok(defaultApiLimits.timeoutMsMin <= defaultApiLimits.timeoutMsDefault);
    assert.ok(defaultApiLimits.timeoutMsDefault <= defaultApiLimits.timeoutMsMax);
  });

  test("rejects unknown fields, non-integers and inconsistent timeouts", () => {
    rejects(apiLimitsSchema, { bodyBytesMaxx: 1 }, "unknown field");
    rejects(apiLimitsSchema, { bodyBytesMax: 1.5 }, "not an integer");
    rejects(apiLimitsSchema, { bodyBytesMax: 0 }, "zero");
    rejects(apiLimitsSchema, { timeoutMsMin: 5000, timeoutMsDefault: 1000 }, "min > default");
    rejects(apiLimitsSchema, { timeoutMsMax: 1000, timeoutMsDefault: 30000 }, "default > max");
  });
});

describe("§5 examples are accepted", () => {
  test("begin request, with defaults applied when fields are left out", () => {
    accepts(s.beginRequest, examples.begin);
    assert.deepEqual(s.beginRequest.parse({}), {
      timeoutMs: defaultApiLimits.timeoutMsDefault,
      labels: {},
    });
  });

  test("each branch kind", () => {
    for (const body of [
      examples.pgStatements,
      examples.pgServicePrepared,
      examples.redis,
      examples.kafka,
    ]) {
      accepts(s.enlistRequest, body);
    }
  });

  test("responses: begin, enlist, commit 200/202/409, status", () => {
    const view = {
      xid: "tx-42",
      state: "active",
      deadline,
      labels: { order: "42" },
      branches: [],
    };
    accepts(s.transactionView, view);
    accepts(s.enlistResponse, { branch: 1, branchId, participant: "pg-orders", kind: "postgres" });
    const branch = {
      branch: 1,
      branchId,
      participant: "pg-orders",
      kind: "postgres",
      state: "committed",
      vote: "yes",
    };
    accepts(s.committedView, {
      ...view,
      state: "committed",
      decision: "commit",
      branches: [branch],
    });
    accepts(s.committingView, { ...view, state: "committing", decision: "commit" });
    rejects(s.committedView, { ...view, state: "committing" }, "200 answers committed only");
    const reason = { code: "vote-no", message: "expected 1 row, got 0", branch: 1 };
    accepts(s.transactionAbortedBody, {
      ...errorBody("transaction-aborted", "transaction tx-42 aborted"),
      xid: "tx-42",
      state: "aborted",
      reason,
    });
    accepts(s.transactionView, { ...view, state: "aborted", decision: "abort", reason });
  });
});

describe("malformed input is rejected", () => {
  test("wrong types", () => {
    rejects(s.beginRequest, { timeoutMs: "30000" }, "timeout as string");
    rejects(s.beginRequest, { labels: { order: 42 } }, "label value as number");
    rejects(s.enlistRequest, { ...examples.pgStatements, participant: 7 }, "participant as number");
    rejects(
      s.enlistRequest,
      { participant: "pg", statements: [{ sql: "select 1", params: [{}] }] },
      "object param",
    );
    rejects(
      s.enlistRequest,
      { participant: "pg", statements: [{ sql: "select 1", expectRows: 1.5 }] },
      "fractional expectRows",
    );
    rejects(
      s.enlistRequest,
      { participant: "pg", servicePrepared: false },
      "servicePrepared false",
    );
    rejects(
      s.enlistRequest,
      { participant: "r", ops: [{ op: "incrby", key: "k", by: 1.5 }] },
      "fractional incrby",
    );
    rejects(
      s.enlistRequest,
      { participant: "r", ops: [{ op: "flushall", key: "k" }] },
      "unknown op",
    );
    rejects(
      s.enlistRequest,
      {
        participant: "r",
        ops: [{ op: "set", key: "k", value: "v" }],
        preconditions: [{ key: "k", absent: false }],
      },
      "absent false",
    );
    rejects(
      s.enlistRequest,
      { participant: "k", messages: [{ topic: "bad topic!", value: "v" }] },
      "invalid topic",
    );
    rejects(
      s.enlistRequest,
      { participant: "k", messages: [{ topic: "t", value: "v", partition: -1 }] },
      "negative partition",
    );
    rejects(s.xidParams, { xid: "a:b" }, "colon in xid");
    rejects(s.branchParams, { xid: "tx", n: "0" }, "branch 0");
    rejects(s.branchParams, { xid: "tx", n: "1e2" }, "not a decimal");
  });

  test("unknown fields, at every level", () => {
    rejects(s.beginRequest, { ...examples.begin, isolation: "serializable" }, "top level");
    rejects(s.enlistRequest, { ...examples.redis, extra: 1 }, "branch body");
    rejects(
      s.enlistRequest,
      { participant: "pg", statements: [{ sql: "select 1", timeout: 5 }] },
      "statement",
    );
    rejects(
      s.enlistRequest,
      { participant: "r", ops: [{ op: "del", key: "k", value: "v" }] },
      "redis op",
    );
    rejects(
      s.enlistRequest,
      { participant: "k", messages: [{ topic: "t", value: "v", acks: 1 }] },
      "message",
    );
    rejects(s.emptyRequest, { force: true }, "empty body");
  });

  test("a branch carries exactly one kind", () => {
    rejects(
      s.enlistRequest,
      { ...examples.pgStatements, servicePrepared: true },
      "statements + servicePrepared",
    );
    rejects(
      s.enlistRequest,
      { ...examples.redis, messages: examples.kafka.messages },
      "ops + messages",
    );
    rejects(s.enlistRequest, { participant: "pg-orders" }, "no kind at all");
    rejects(
      s.enlistRequest,
      { ...examples.pgStatements, preconditions: examples.redis.preconditions },
      "preconditions without ops",
    );
  });
});

describe("every bound is enforced, exactly at the limit", () => {
  // Small limits keep the over-limit inputs small.
  const limits: ApiLimits = apiLimitsSchema.parse({
    branchesPerTransactionMax: 3,
    statementsPerBranchMax: 3,
    sqlCharsMax: 20,
    paramsPerStatementMax: 3,
    opsPerBranchMax: 3,
    preconditionsPerBranchMax: 3,
    valuesPerOpMax: 3,
    messagesPerBranchMax: 3,
    headersPerMessageMax: 3,
    keyCharsMax: 8,
    valueCharsMax: 16,
    timeoutMsMin: 100,
    timeoutMsMax: 1000,
    timeoutMsDefault: 500,
    labelsMax: 3,
    labelCharsMax: 8,
    idempotencyKeyCharsMax: 10,
    listPageSizeMax: 5,
    listPageSizeDefault: 5,
  });
  const small = buildSchemas(limits);
  const times = <T>(n: number, make: (i: number) => T): T[] =>
    Array.from({ length: n }, (_, i) => make(i));
  const labels = (n: number) => Object.fromEntries(times(n, (i) => [`l${i}`, "v"]));
  const headers = (n: number) => Object.fromEntries(times(n, (i) => [`h${i}`, "v"]));
  const stmt = (extra: object = {}) => ({
    participant: "pg",
    statements: [{ sql: "select 1", ...extra }],
  });
  const ops = (list: object[]) => ({ participant: "r", ops: list });
  const msgs = (list: object[]) => ({ participant: "k", messages: list });
  const msg = (extra: object = {}) => ({ topic: "t", value: "v", ...extra });
  const view = (n: number) => ({
    xid: "tx",
    state: "active",
    deadline,
    labels: {},
    branches: times(n, (i) => ({
      branch: i + 1,
      branchId: `c:tx:${i + 1}`,
      participant: `p${i}`,
      kind: "redis",
      state: "enlisted",
    })),
  });

  /** [limit, schema, input exactly at the limit, input one over it] */
  type Bound = Exclude<keyof ApiLimits, "inFlightTransactionsPerPrincipalMax">;
  const cases: [Bound, z.ZodType, (n: number) => unknown][] = [
    ["branchesPerTransactionMax", small.branchParams, (n) => ({ xid: "tx", n: String(n) })],
    ["branchesPerTransactionMax", small.transactionView, view],
    [
      "statementsPerBranchMax",
      small.enlistRequest,
      (n) => ({ participant: "pg", statements: times(n, () => ({ sql: "select 1" })) }),
    ],
    [
      "sqlCharsMax",
      small.enlistRequest,
      (n) => ({ participant: "pg", statements: [{ sql: "x".repeat(n) }] }),
    ],
    ["paramsPerStatementMax", small.enlistRequest, (n) => stmt({ params: times(n, () => null) })],
    ["valueCharsMax", small.enlistRequest, (n) => stmt({ params: ["x".repeat(n)] })],
    [
      "opsPerBranchMax",
      small.enlistRequest,
      (n) => ops(times(n, (i) => ({ op: "del", key: `k${i}` }))),
    ],
    [
      "preconditionsPerBranchMax",
      small.enlistRequest,
      (n) => ({
        ...ops([{ op: "del", key: "k" }]),
        preconditions: times(n, (i) => ({ key: `k${i}`, absent: true })),
      }),
    ],
    [
      "valuesPerOpMax",
      small.enlistRequest,
      (n) => ops([{ op: "sadd", key: "k", values: times(n, (i) => `v${i}`) }]),
    ],
    ["keyCharsMax", small.enlistRequest, (n) => ops([{ op: "del", key: "k".repeat(n) }])],
    [
      "keyCharsMax",
      small.enlistRequest,
      (n) => ops([{ op: "hdel", key: "k", field: "f".repeat(n) }]),
    ],
    [
      "valueCharsMax",
      small.enlistRequest,
      (n) => ops([{ op: "set", key: "k", value: "v".repeat(n) }]),
    ],
    ["messagesPerBranchMax", small.enlistRequest, (n) => msgs(times(n, () => msg()))],
    ["headersPerMessageMax", small.enlistRequest, (n) => msgs([msg({ headers: headers(n) })])],
    ["keyCharsMax", small.enlistRequest, (n) => msgs([msg({ key: "k".repeat(n) })])],
    ["valueCharsMax", small.enlistRequest, (n) => msgs([msg({ value: "v".repeat(n) })])],
    ["timeoutMsMax", small.beginRequest, (n) => ({ timeoutMs: n })],
    ["labelsMax", small.beginRequest, (n) => ({ labels: labels(n) })],
    ["labelCharsMax", small.beginRequest, (n) => ({ labels: { k: "v".repeat(n) } })],
    ["labelCharsMax", small.beginRequest, (n) => ({ labels: { ["k".repeat(n)]: "v" } })],
    ["idempotencyKeyCharsMax", small.idempotencyKey, (n) => "k".repeat(n)],
    ["listPageSizeMax", small.adminListQuery, (n) => ({ limit: String(n) })],
  ];

  for (const [limit, schema, make] of cases) {
    test(`${limit}: ${limits[limit]} accepted, ${limits[limit] + 1} rejected`, () => {
      accepts(schema, make(limits[limit]));
      rejects(schema, make(limits[limit] + 1), `over ${limit}`);
    });
  }

  test("timeoutMsMin: at the minimum accepted, below it rejected", () => {
    accepts(small.beginRequest, { timeoutMs: limits.timeoutMsMin });
    rejects(small.beginRequest, { timeoutMs: limits.timeoutMsMin - 1 }, "under timeoutMsMin");
  });

  test("branchPayloadBytes counts UTF-8 bytes of the work, not the participant name", () => {
    const a = branchPayloadBytes(s.enlistRequest.parse(ops([{ op: "set", key: "k", value: "é" }])));
    const b = branchPayloadBytes(
      s.enlistRequest.parse({
        ...ops([{ op: "set", key: "k", value: "e" }]),
        participant: "a-much-longer-name",
      }),
    );
    assert.equal(a, b + 1);
  });
});

describe("errors", () => {
  test("every code has one 4xx/5xx status, a retry verdict and a description", () => {
    for (const code of errorCodes) {
      const e = errorCatalogue[code];
      assert.ok(e.status >= 400 && e.status < 600, code);
      assert.ok(e.when.length > 10, code);
      const err = new ApiError(code, "m", { xid: "tx" });
      assert.equal(err.status, e.status);
      assert.equal(err.retryable, e.retryable);
      accepts(s.errorBody, err.toBody());
    }
    assert.equal(new ApiError("not-leader", "m").status, 503);
    assert.equal(new ApiError("too-many-transactions", "m").retryable, true);
    assert.equal(new ApiError("transaction-aborted", "m").retryable, false);
  });

  test("validationFailed names the field of the branch kind the body came closest to", () => {
    const bad = s.enlistRequest.safeParse({ participant: "pg", statements: [{ sql: 5 }] });
    assert.ok(!bad.success);
    const err = validationFailed(bad.error, "body");
    assert.equal(err.code, "validation-failed");
    assert.equal(err.status, 400);
    const issues = err.details?.issues as { path: string; message: string }[];
    assert.deepEqual(
      issues.map((i) => i.path),
      ["body.statements[0].sql"],
    );
  });

  test("validationFailed says 'exactly one' when a body mixes branch kinds", () => {
    const bad = s.enlistRequest.safeParse({ ...examples.pgStatements, ...examples.kafka });
    assert.ok(!bad.success);
    const err = validationFailed(bad.error, "body");
    assert.match(err.message, /^body: a branch carries exactly one of/);
  });

  test("validationFailed reports a bad precondition by its own union's message", () => {
    const bad = s.enlistRequest.safeParse({ ...examples.redis, preconditions: [{ key: "k" }] });
    assert.ok(!bad.success);
    assert.match(
      validationFailed(bad.error, "body").message,
      /^body\.preconditions\[0\]: a precondition is one of/,
    );
  });
});
