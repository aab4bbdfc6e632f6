/**
 * Every route the node documents (GET /openapi.json, iterated, so a new route without cases
 * fails here) answers bad input with its status, its stable error code — one the document
 * lists for that route and status — and the one error shape
 * `{error:{code,message,retryable,details?}}`; and NOTHING changes: the decision log's bytes,
 * the in-flight count (/metrics), the target transactions (GET), every row of the account
 * table in both databases and the prepared transactions of this cluster are the same after
 * each case, and committing the target at the end applies exactly its one original statement.
 *
 * Cases: no token, unknown token, a client token on an admin route, another principal's
 * transaction, an invalid or unknown xid, malformed JSON, wrong types, unknown fields, the
 * wrong content type, an invalid Idempotency-Key, and each limit that applies (body bytes,
 * branches per transaction, statements per branch alone and merged, payload bytes per
 * transaction, timeout min/max, labels), an unknown participant, a participant outside the
 * token's scope, and another participant kind's work sent to PostgreSQL. The operators' routes
 * add: an unknown resolve action, an empty / oversized / missing reason, a branch that is 0,
 * not an integer or over the limit, a resolution the transaction's state refuses (409), and a
 * recovery call with a non-empty body.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { TransactionView } from "../../../client/index.js";
import { newXid } from "../../../coordinator/core/ids.js";
import {
  assertError,
  createAccounts,
  logBytes,
  preparedOf,
  raw,
  startApiNode,
  type Accounts,
  type ApiNode,
  type RawRequest,
} from "./harness.js";

const limits = {
  bodyBytesMax: 8192,
  valueCharsMax: 1024,
  branchesPerTransactionMax: 1,
  statementsPerBranchMax: 2,
  payloadBytesPerTransactionMax: 1024,
  timeoutMsMin: 100,
  timeoutMsMax: 120_000,
  timeoutMsDefault: 30_000,
  labelsMax: 2,
  labelCharsMax: 16,
  idempotencyKeyCharsMax: 32,
};

let node: ApiNode;
let accounts: Accounts;
/** client-a's active transaction with one branch on pg-a: what the cases aim at. */
let target: string;
/** client-a's active transaction with no branch. */
let empty: string;
/** client-b's own active transaction (client-b may enlist only pg-b). */
let scoped: string;
/** client-a's active transaction with a service-prepared branch on pg-b, never prepared. */
let service: string;
let documented: Record<string, Record<string, Operation>>;

interface Operation {
  readonly operationId: string;
  readonly security: Record<string, unknown>[];
  readonly requestBody?: unknown;
  readonly parameters: { $ref?: string; name?: string; in?: string }[];
  readonly responses: Record<string, { "x-error-codes"?: string[] }>;
}

/** One bad request and what it must answer. */
interface Case {
  readonly name: string;
  readonly request: RawRequest;
  /** The route's `{xid}`; `target` unless said. */
  readonly xid?: string;
  /** The route's `{n}`; 1 unless said. */
  readonly n?: string;
  /** A query string (without `?`). */
  readonly query?: string;
  readonly status: number;
  readonly code: string;
}

const insertOne = () => ({
  participant: "pg-a",
  statements: [{ sql: `insert into ${accounts.table} values (1, 1)` }],
});

async function begin(token: string): Promise<string> {
  const answer = await raw(node.url, "POST", "/v1/transactions", {
    token,
    body: { timeoutMs: 120_000 },
  });
  assert.equal(answer.status, 201, answer.text);
  return (answer.body as TransactionView).xid;
}

before(async () => {
  node = await startApiNode({ limits, scopedParticipants: ["pg-b"] });
  accounts = await createAccounts({ "pg-a": [[100, 100]], "pg-b": [[100, 100]] });
  target = await begin(node.clientToken);
  const enlisted = await raw(node.url, "POST", `/v1/transactions/${target}/branches`, {
    token: node.clientToken,
    body: insertOne(),
  });
  assert.equal(enlisted.status, 201, enlisted.text);
  empty = await begin(node.clientToken);
  scoped = await begin(node.otherClientToken);
  service = await begin(node.clientToken);
  const servicePrepared = await raw(node.url, "POST", `/v1/transactions/${service}/branches`, {
    token: node.clientToken,
    body: { participant: "pg-b", servicePrepared: true },
  });
  assert.equal(servicePrepared.status, 201, servicePrepared.text);
  documented = ((await raw(node.url, "GET", "/openapi.json")).body as { paths: typeof documented })
    .paths;
});

after(async () => {
  // The node first: its stop rolls back (and reports) any prepared branch holding row locks.
  try {
    await node?.stop();
  } finally {
    await accounts?.drop();
  }
});

/** Everything a bad request must leave as it was. */
async function observe(): Promise<unknown> {
  const views: unknown[] = [];
  for (const [xid, token] of [
    [target, node.clientToken],
    [empty, node.clientToken],
    [scoped, node.otherClientToken],
    [service, node.clientToken],
  ] as const) {
    views.push((await raw(node.url, "GET", `/v1/transactions/${xid}`, { token })).body);
  }
  const metrics = (await raw(node.url, "GET", "/metrics")).text;
  return {
    logBytes: await logBytes(node.dataDir),
    inFlight: /^verdict_transactions_in_flight\S* (\S+)$/m.exec(metrics)?.[1],
    views,
    rowsA: [...(await accounts.rows("pg-a"))],
    rowsB: [...(await accounts.rows("pg-b"))],
    prepared: await preparedOf(node.node.clusterId),
  };
}

const json = (value: unknown): RawRequest => ({ token: node.clientToken, body: value });
const statement = (sql: string) => ({ sql });

/** A resolve body the schema accepts; `abort` is never sent with it to a case that passes. */
const resolveBody = { action: "abort", reason: "bad-input test" };

/**
 * A body the route accepts, so that a case fails on the one thing it breaks (the body is
 * validated before the handler runs). pg-b: the one participant client-b's token may enlist.
 */
function validBody(path: string, op: Operation): RawRequest {
  if (!op.requestBody) return {};
  if (path.endsWith("/branches")) {
    return { body: { participant: "pg-b", statements: [statement("select 1")] } };
  }
  if (path.endsWith("/resolve")) return { body: resolveBody };
  return { body: {} };
}

/** Cases every route gets, from what the document says of it. */
function commonCases(path: string, op: Operation): Case[] {
  // A public route (the probes) needs no token: there is no authentication to get wrong.
  if (op.security.length === 0) return [];
  const body = validBody(path, op);
  const cases: Case[] = [
    { name: "no token", request: {}, status: 401, code: "unauthorized" },
    {
      name: "unknown token",
      request: { token: "not-a-token-of-this-cluster" },
      status: 401,
      code: "unauthorized",
    },
    {
      name: "not a bearer token",
      request: { headers: { authorization: `Basic ${node.clientToken}` } },
      status: 401,
      code: "unauthorized",
    },
  ];
  const admin = op.security.every((s) => "adminToken" in s);
  if (admin) {
    cases.push({
      name: "client token on an admin route",
      request: { token: node.clientToken },
      status: 403,
      code: "forbidden",
    });
  }
  if (path.includes("{xid}")) {
    const token = admin ? node.adminToken : node.clientToken;
    cases.push(
      {
        name: "invalid xid",
        request: { token, ...body },
        xid: "x".repeat(65),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "xid with a character outside the pattern",
        request: { token, ...body },
        xid: "bad.xid",
        status: 400,
        code: "validation-failed",
      },
    );
    if (!admin) {
      cases.push({
        name: "another principal's transaction",
        request: { token: node.otherClientToken, ...body },
        status: 403,
        code: "forbidden",
      });
    }
  }
  if (op.requestBody) {
    // The route's own kind of token, so that the body is what fails.
    const token = admin ? node.adminToken : node.clientToken;
    const json = (value: unknown): RawRequest => ({ token, body: value });
    const valid = (body.body ?? {}) as Record<string, unknown>;
    cases.push(
      {
        name: "malformed JSON",
        request: { token, rawBody: '{"a":' },
        status: 400,
        code: "bad-request",
      },
      {
        name: "empty body declared as JSON",
        request: { token, rawBody: "" },
        status: 400,
        code: "bad-request",
      },
      {
        name: "an array, not an object",
        request: json([]),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "a string, not an object",
        request: json("x"),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "unknown field beside a valid body",
        request: json({ ...valid, surprise: true }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "body over bodyBytesMax",
        request: json({ pad: "x".repeat(limits.bodyBytesMax) }),
        status: 413,
        code: "body-too-large",
      },
      {
        name: "application/xml",
        request: { token, rawBody: "<a/>", headers: { "content-type": "application/xml" } },
        status: 415,
        code: "unsupported-media-type",
      },
      {
        name: "text/plain",
        request: { token, rawBody: "{}", headers: { "content-type": "text/plain" } },
        status: 415,
        code: "unsupported-media-type",
      },
    );
  }
  if (op.parameters.some((p) => p.$ref?.endsWith("/IdempotencyKey"))) {
    for (const [what, key] of [
      ["over idempotencyKeyCharsMax", "k".repeat(limits.idempotencyKeyCharsMax + 1)],
      ["with a space", "two words"],
    ] as const) {
      cases.push({
        name: `Idempotency-Key ${what}`,
        request: { token: node.clientToken, ...body, headers: { "idempotency-key": key } },
        status: 400,
        code: "validation-failed",
      });
    }
  }
  return cases;
}

/**
 * Cases particular to each route, by `METHOD path` as the document names it. A documented
 * route missing here fails the test: every route must say how it refuses bad input.
 */
function routeCases(): Record<string, Case[]> {
  // An xid of the node's format that began at the epoch: long past the retention time.
  const unknownXid = newXid(0, "ab".repeat(10));
  const notFound = (body?: unknown): Case => ({
    name: "unknown xid",
    request: { token: node.clientToken, ...(body === undefined ? {} : { body }) },
    xid: unknownXid,
    status: 404,
    code: "transaction-not-found",
  });
  // Commit and prepare of a recent xid the log never saw answer presumed abort
  // (ARCHITECTURE §3: after a failover such a transaction answers `aborted`), changing nothing.
  const presumedAborted: Case = {
    name: "unknown recent xid (presumed abort)",
    request: json({}),
    xid: newXid(Date.now(), "cd".repeat(10)),
    status: 409,
    code: "transaction-aborted",
  };
  const pad = "x".repeat(limits.payloadBytesPerTransactionMax);
  const admin = (body: unknown): RawRequest => ({ token: node.adminToken, body });
  const invalidResolve = (name: string, body: unknown): Case => ({
    name,
    request: admin(body),
    status: 400,
    code: "validation-failed",
  });
  /** A resolution the target's state refuses: it is active, never prepared, undecided. */
  const refusedResolve = (action: string): Case => ({
    name: `${action} of an active transaction that never prepared`,
    request: admin({ action, reason: "bad-input test" }),
    status: 409,
    code: "invalid-state",
  });
  return {
    "POST /v1/transactions": [
      {
        name: "timeoutMs below min",
        request: json({ timeoutMs: 99 }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "timeoutMs above max",
        request: json({ timeoutMs: limits.timeoutMsMax + 1 }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "timeoutMs as a string",
        request: json({ timeoutMs: "1000" }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "timeoutMs not an integer",
        request: json({ timeoutMs: 1000.5 }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "labels over labelsMax",
        request: json({ labels: { a: "1", b: "2", c: "3" } }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "label value over labelCharsMax",
        request: json({ labels: { a: "v".repeat(limits.labelCharsMax + 1) } }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "label name with a space",
        request: json({ labels: { "a b": "1" } }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "label value a number",
        request: json({ labels: { a: 1 } }),
        status: 400,
        code: "validation-failed",
      },
    ],
    "GET /v1/transactions/{xid}": [notFound()],
    // Refused before a stream starts, as the status route refuses.
    "GET /v1/transactions/{xid}/events": [notFound()],
    "POST /v1/transactions/{xid}/branches": [
      notFound(insertOne()),
      {
        name: "unknown participant",
        request: json({ participant: "pg-zz", statements: [statement("select 1")] }),
        status: 400,
        code: "unknown-participant",
      },
      {
        name: "a participant outside the token's scope",
        request: {
          token: node.otherClientToken,
          body: { participant: "pg-a", statements: [statement("select 1")] },
        },
        xid: scoped,
        status: 403,
        code: "participant-forbidden",
      },
      {
        name: "no work",
        request: json({ participant: "pg-a" }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "two kinds of work at once",
        request: json({
          participant: "pg-a",
          statements: [statement("select 1")],
          servicePrepared: true,
        }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "empty statements",
        request: json({ participant: "pg-a", statements: [] }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "statements over statementsPerBranchMax",
        request: json({
          participant: "pg-a",
          statements: [statement("select 1"), statement("select 2"), statement("select 3")],
        }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "merged statements over statementsPerBranchMax",
        request: json({
          participant: "pg-a",
          statements: [
            statement(`insert into ${accounts.table} values (2, 2)`),
            statement(`insert into ${accounts.table} values (3, 3)`),
          ],
        }),
        status: 400,
        code: "limit-exceeded",
      },
      {
        name: "a second participant over branchesPerTransactionMax",
        request: json({
          participant: "pg-b",
          statements: [statement(`insert into ${accounts.table} values (4, 4)`)],
        }),
        status: 400,
        code: "limit-exceeded",
      },
      {
        name: "work over payloadBytesPerTransactionMax",
        request: json({
          participant: "pg-a",
          statements: [statement(`insert into ${accounts.table} select 5, length('${pad}')`)],
        }),
        status: 413,
        code: "payload-too-large",
      },
      {
        name: "sql as a number",
        request: json({ participant: "pg-a", statements: [{ sql: 1 }] }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "a parameter that is an object",
        request: json({ participant: "pg-a", statements: [{ sql: "select $1", params: [{}] }] }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "negative expectRows",
        request: json({ participant: "pg-a", statements: [{ sql: "select 1", expectRows: -1 }] }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "unknown field in a statement",
        request: json({ participant: "pg-a", statements: [{ sql: "select 1", rows: 1 }] }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "Redis operations sent to PostgreSQL",
        request: json({ participant: "pg-a", ops: [{ op: "set", key: "k", value: "v" }] }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "Kafka messages sent to PostgreSQL",
        request: json({ participant: "pg-a", messages: [{ topic: "t", value: "v" }] }),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "service-prepared on a participant that has statements",
        request: json({ participant: "pg-a", servicePrepared: true }),
        status: 409,
        code: "invalid-state",
      },
      {
        name: "participant name outside the pattern",
        request: json({ participant: "pg a", statements: [statement("select 1")] }),
        status: 400,
        code: "validation-failed",
      },
    ],
    "POST /v1/transactions/{xid}/branches/{n}/prepared": [
      notFound({}),
      { name: "n = 0", request: json({}), n: "0", status: 400, code: "validation-failed" },
      {
        name: "n not a number",
        request: json({}),
        n: "one",
        status: 400,
        code: "validation-failed",
      },
      {
        name: "n over branchesPerTransactionMax",
        request: json({}),
        n: String(limits.branchesPerTransactionMax + 1),
        status: 400,
        code: "validation-failed",
      },
      {
        name: "a coordinator-executed branch",
        request: json({}),
        status: 409,
        code: "invalid-state",
      },
      {
        name: "a service branch that is not prepared",
        request: json({}),
        xid: service,
        status: 409,
        code: "branch-not-prepared",
      },
      {
        name: "no such branch",
        request: json({}),
        xid: empty,
        status: 404,
        code: "branch-not-found",
      },
    ],
    "POST /v1/transactions/{xid}/prepare": [notFound({}), presumedAborted],
    "POST /v1/transactions/{xid}/commit": [notFound({}), presumedAborted],
    "POST /v1/transactions/{xid}/abort": [notFound({})],
    "GET /admin/v1/transactions": [
      ["limit=0", "limit below 1"],
      ["limit=99999999", "limit over listPageSizeMax"],
      ["state=bogus", "unknown state"],
      ["surprise=1", "unknown query parameter"],
      ["cursor=zz", "a cursor this node never gave"],
    ].map(([query, name]) => ({
      name: name ?? "",
      request: { token: node.adminToken },
      query: query ?? "",
      status: 400,
      code: "validation-failed",
    })),
    "POST /admin/v1/cluster/leadership": (
      [
        [{ to: 7 }, "to a number"],
        [{ to: "" }, "to empty"],
        [{ to: "n".repeat(65) }, "to over 64 characters"],
        [{ surprise: 1 }, "an unknown field"],
      ] as const
    ).map(([body, name]) => ({
      name,
      request: admin(body),
      status: 400,
      code: "validation-failed",
    })),
    "GET /admin/v1/audit": [
      ["limit=0", "limit below 1"],
      ["limit=99999999", "limit over listPageSizeMax"],
      ["surprise=1", "unknown query parameter"],
      ["cursor=zz", "a cursor that is not a record's seq"],
      ["cursor=-1", "a negative cursor"],
    ].map(([query, name]) => ({
      name: name ?? "",
      request: { token: node.adminToken },
      query: query ?? "",
      status: 400,
      code: "validation-failed",
    })),
    "GET /admin/v1/transactions/{xid}": [{ ...notFound(), request: { token: node.adminToken } }],
    "POST /admin/v1/transactions/{xid}/resolve": [
      { ...notFound(resolveBody), request: admin(resolveBody) },
      invalidResolve("unknown action", { ...resolveBody, action: "rollback" }),
      invalidResolve("action in capitals", { ...resolveBody, action: "ABORT" }),
      invalidResolve("no action", { reason: "r" }),
      invalidResolve("no reason", { action: "abort" }),
      invalidResolve("empty reason", { ...resolveBody, reason: "" }),
      invalidResolve("reason over 4000 characters", { ...resolveBody, reason: "r".repeat(4001) }),
      invalidResolve("reason a number", { ...resolveBody, reason: 7 }),
      invalidResolve("branch 0", { ...resolveBody, action: "settle", branch: 0 }),
      invalidResolve("branch not an integer", { ...resolveBody, action: "settle", branch: 1.5 }),
      invalidResolve("branch as a string", { ...resolveBody, action: "settle", branch: "1" }),
      invalidResolve("branch over branchesPerTransactionMax", {
        ...resolveBody,
        action: "settle",
        branch: limits.branchesPerTransactionMax + 1,
      }),
      refusedResolve("commit"),
      refusedResolve("settle"),
      refusedResolve("forget"),
    ],
    "POST /admin/v1/recovery": [
      {
        name: "a non-empty body",
        request: admin({ now: true }),
        status: 400,
        code: "validation-failed",
      },
    ],
    // Beyond authentication (the common cases) these take no input at all.
    "GET /admin/v1/participants": [],
    "GET /admin/v1/cluster": [],
    // No input besides the token (the common cases refuse those).
    "GET /admin/v1/events": [],
    // The probes take no input and need no token.
    "GET /livez": [],
    "GET /readyz": [],
    "GET /healthz": [],
  };
}

function pathFor(path: string, c: Case): string {
  const filled = path
    .replace("{xid}", encodeURIComponent(c.xid ?? target))
    .replace("{n}", encodeURIComponent(c.n ?? "1"));
  return c.query === undefined ? filled : `${filled}?${c.query}`;
}

describe("bad input on every documented route", () => {
  test("every documented route has its own cases", () => {
    const cases = routeCases();
    const routes = Object.entries(documented).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
    assert.ok(routes.length >= 7, `documented routes: ${routes.join(", ")}`);
    for (const route of routes) assert.ok(cases[route], `no bad-input cases for ${route}`);
    for (const route of Object.keys(cases))
      assert.ok(routes.includes(route), `${route} undocumented`);
  });

  test("each case answers its error and changes nothing", async (t) => {
    const specific = routeCases();
    for (const [path, ops] of Object.entries(documented)) {
      for (const [method, op] of Object.entries(ops)) {
        const route = `${method.toUpperCase()} ${path}`;
        await t.test(route, async (rt) => {
          const cases = [...commonCases(path, op), ...(specific[route] ?? [])];
          const failures: string[] = [];
          for (const c of cases) {
            const label = `${route} — ${c.name}`;
            const before = await observe();
            const answer = await raw(node.url, method.toUpperCase(), pathFor(path, c), c.request);
            try {
              assertError(answer, c.status, c.code, label);
              const listed = op.responses[String(c.status)]?.["x-error-codes"] ?? [];
              assert.ok(
                listed.includes(c.code),
                `${label}: ${c.code} not documented for ${c.status}`,
              );
              assert.deepEqual(await observe(), before, `${label}: something changed`);
            } catch (err) {
              const line = err instanceof Error ? (err.message.split("\n")[0] ?? "") : String(err);
              failures.push(line);
              rt.diagnostic(`FAILED ${line}`);
            }
          }
          rt.diagnostic(`${cases.length} cases`);
          assert.equal(failures.length, 0, `${failures.length} of ${cases.length} cases failed`);
        });
      }
    }
  });

  test("the target still commits exactly its one original statement", async () => {
    const answer = await raw(node.url, "POST", `/v1/transactions/${target}/commit`, json({}));
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(
      [...(await accounts.rows("pg-a"))],
      [
        [1, 1],
        [100, 100],
      ],
    );
    assert.deepEqual([...(await accounts.rows("pg-b"))], [[100, 100]]);
    for (const xid of [empty, service]) {
      await raw(node.url, "POST", `/v1/transactions/${xid}/abort`, json({}));
    }
    await raw(node.url, "POST", `/v1/transactions/${scoped}/abort`, {
      token: node.otherClientToken,
      body: {},
    });
    assert.deepEqual(await preparedOf(node.node.clusterId), []);
  });

  // Last, and on routes without a target: until it passes, JSON `null` acts as `{}` and would
  // drive the target (prepare, commit) for every case after it.
  test("JSON null is not an object: refused, nothing begun", async () => {
    for (const [path, token] of [
      ["/v1/transactions", node.clientToken],
      ["/admin/v1/recovery", node.adminToken],
    ] as const) {
      const before = await observe();
      const answer = await raw(node.url, "POST", path, { token, rawBody: "null" });
      assertError(answer, 400, "validation-failed", `POST ${path} with null`);
      assert.deepEqual(await observe(), before, `POST ${path} with null changed something`);
    }
  });
});
