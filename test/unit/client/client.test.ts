// Proves the SDK's transport behaviour against scripted node:http servers on 127.0.0.1:
// it follows a not-leader hint, skips a node that refuses connections or hangs, resolves
// 503 outcome-unknown (or a connection lost mid-commit) through the status, repeating the
// commit with the same key while the transaction is undecided or the status answers 404
// (so that a presumed abort or a commit is learned, not given up on), reuses one
// Idempotency-Key across the retries of a call, types a 409 aborted as
// TransactionAbortedError with its reason, and gives up after the bounded attempts and
// time with a typed error. Calls reuse kept-alive connections, at most connectionsMax at once.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import {
  OutcomeUnknownError,
  TransactionAbortedError,
  VerdictClient,
  VerdictError,
  pgStatements,
  redis,
  redisOps,
  sql,
} from "../../../client/index.js";
import type { VerdictClientOptions } from "../../../client/index.js";

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: unknown;
  /** The client's port: the same for calls over one kept-alive connection. */
  readonly clientPort: number | undefined;
}
/** "hang": never answer; "drop": close the connection without an answer. */
type Reply = { status: number; body?: unknown } | "hang" | "drop";
interface Scripted {
  readonly url: string;
  readonly seen: Seen[];
  close(): Promise<void>;
}

const servers: Scripted[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** A server answering each request with `script(request, index)`. */
async function serve(script: (req: Seen, index: number) => Reply): Promise<Scripted> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const request: Seen = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: text === "" ? undefined : (JSON.parse(text) as unknown),
        clientPort: req.socket.remotePort,
      };
      seen.push(request);
      const reply = script(request, seen.length - 1);
      if (reply === "hang") return;
      if (reply === "drop") return void req.socket.destroy();
      res.writeHead(reply.status, { "content-type": "application/json" });
      res.end(reply.body === undefined ? "" : JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const scripted: Scripted = {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(scripted);
  return scripted;
}

/** A URL on which nothing listens: connections are refused. */
async function refusingUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

const xid = "tx-1";
const deadline = "2030-01-01T00:00:30.000Z";
const view = (state: string, extra: object = {}) => ({
  xid,
  state,
  deadline,
  labels: {},
  branches: [],
  ...extra,
});
const apiError = (status: number, code: string, retryable: boolean, details?: object) => ({
  status,
  body: {
    error: { code, message: `${code} (scripted)`, retryable, ...(details ? { details } : {}) },
  },
});
const unavailable = apiError(503, "unavailable", true);
const outcomeUnknown = apiError(503, "outcome-unknown", true);
const notFound = apiError(404, "transaction-not-found", false);
const abortedAnswer = (reason: object) => ({
  status: 409,
  body: {
    error: { code: "transaction-aborted", message: "aborted (scripted)", retryable: false },
    xid,
    state: "aborted",
    reason,
  },
});

function client(urls: string[], extra: Partial<VerdictClientOptions> = {}): VerdictClient {
  return new VerdictClient({
    baseUrls: urls,
    token: "client-token-1",
    timeoutMs: 2000,
    retry: { attemptsMax: 4, backoffMsInitial: 1, backoffMsMax: 5 },
    outcomeChecksMax: 3,
    ...extra,
  });
}

const keyOf = (s: Seen) => s.headers["idempotency-key"];

describe("connections", () => {
  test("the calls of a transaction reuse one kept-alive connection", async () => {
    const node = await serve((req) =>
      req.url.endsWith("/branches")
        ? { status: 201, body: { branch: { id: 1 } } }
        : { status: req.url.endsWith("/commit") ? 200 : 201, body: view("committed") },
    );
    const c = client([node.url]);
    await c.begin();
    await c.enlist(xid, redisOps("r", [{ op: "incrby", key: "k", by: 1 }]));
    await c.enlist(xid, redisOps("r", [{ op: "incrby", key: "k", by: 2 }]));
    await c.commit(xid);
    const ports = new Set(node.seen.map((s) => s.clientPort));
    assert.equal(node.seen.length, 4);
    assert.equal(ports.size, 1, `one connection for four calls, saw ${ports.size}`);
    c.close();
  });

  test("concurrent calls open at most connectionsMax connections", async () => {
    const node = await serve(() => ({ status: 200, body: view("active") }));
    const c = client([node.url], { connectionsMax: 2 });
    await Promise.all(Array.from({ length: 8 }, () => c.status(xid)));
    const ports = new Set(node.seen.map((s) => s.clientPort));
    assert.equal(node.seen.length, 8);
    assert.ok(ports.size <= 2, `at most 2 connections, saw ${ports.size}`);
    c.close();
  });
});

describe("leadership", () => {
  test("a 503 not-leader with a hint is re-sent to the hinted leader with the same key", async () => {
    const leader = await serve(() => ({ status: 201, body: view("active") }));
    const follower = await serve(() =>
      apiError(503, "not-leader", true, { leaderId: "n2", leaderUrl: `${leader.url}/` }),
    );
    const c = client([follower.url]);
    const tx = await c.begin({ timeoutMs: 5000, labels: { order: "42" } });
    assert.equal(tx.state, "active");
    assert.equal(follower.seen.length, 1);
    assert.equal(leader.seen.length, 1);
    assert.equal(keyOf(leader.seen[0]!), keyOf(follower.seen[0]!));
    assert.deepEqual(leader.seen[0]!.body, { timeoutMs: 5000, labels: { order: "42" } });
    assert.equal(leader.seen[0]!.headers.authorization, "Bearer client-token-1");
    assert.equal(c.baseUrl, leader.url, "later calls go straight to the leader");
    await c.status(xid);
    assert.equal(follower.seen.length, 1);
    assert.equal(leader.seen.length, 2);
  });

  test("a refused connection on the first URL moves to the second", async () => {
    const node = await serve(() => ({ status: 200, body: view("active") }));
    const c = client([await refusingUrl(), node.url]);
    assert.equal((await c.status(xid)).xid, xid);
    assert.equal(node.seen.length, 1);
    assert.equal(node.seen[0]!.url, `/v1/transactions/${xid}`);
    assert.equal(keyOf(node.seen[0]!), undefined, "reads carry no Idempotency-Key");
  });

  test("a node that does not answer within timeoutMs is skipped", async () => {
    const hanging = await serve(() => "hang");
    const node = await serve(() => ({ status: 200, body: view("active") }));
    const c = client([hanging.url, node.url], { timeoutMs: 200 });
    const started = Date.now();
    await c.status(xid);
    assert.ok(Date.now() - started < 2000);
    assert.equal(hanging.seen.length, 1);
    assert.equal(node.seen.length, 1);
  });
});

describe("idempotency", () => {
  test("retries of one call reuse its Idempotency-Key and body; the next call has a new key", async () => {
    const node = await serve((_req, i) =>
      i < 2
        ? unavailable
        : {
            status: 201,
            body: { branch: 1, branchId: "c:tx-1:1", participant: "pg-orders", kind: "postgres" },
          },
    );
    const c = client([node.url]);
    const branch = pgStatements("pg-orders", [
      sql("update t set a = $1 where id = $2", [10, 1], { expectRows: 1 }),
    ]);
    const enlisted = await c.enlist(xid, branch);
    assert.equal(enlisted.branchId, "c:tx-1:1");
    assert.equal(node.seen.length, 3);
    const keys = new Set(node.seen.map(keyOf));
    assert.equal(keys.size, 1);
    assert.match(String([...keys][0]), /^[0-9a-f-]{36}$/);
    for (const s of node.seen) {
      assert.equal(s.url, `/v1/transactions/${xid}/branches`);
      assert.deepEqual(s.body, {
        participant: "pg-orders",
        statements: [{ sql: "update t set a = $1 where id = $2", params: [10, 1], expectRows: 1 }],
      });
    }
    await c.enlist(
      xid,
      redisOps("redis-main", [redis.incrby("{acct}:7", 10)], [redis.exists("{acct}:7")]),
    );
    assert.equal(node.seen.length, 4);
    assert.notEqual(keyOf(node.seen[3]!), keyOf(node.seen[0]!));
    assert.deepEqual(node.seen[3]!.body, {
      participant: "redis-main",
      ops: [{ op: "incrby", key: "{acct}:7", by: 10 }],
      preconditions: [{ key: "{acct}:7", exists: true }],
    });
  });
});

describe("commit outcomes", () => {
  test("503 outcome-unknown on commit: the status is asked and its decision returned", async () => {
    const node = await serve((req) =>
      req.method === "POST"
        ? outcomeUnknown
        : { status: 200, body: view("committing", { decision: "commit" }) },
    );
    const result = await client([node.url]).commit(xid);
    assert.equal(result.state, "committing");
    assert.deepEqual(
      node.seen.map((s) => `${s.method} ${s.url}`),
      [`POST /v1/transactions/${xid}/commit`, `GET /v1/transactions/${xid}`],
    );
  });

  test("while the status is undecided, the commit is repeated with the same key", async () => {
    let commits = 0;
    const node = await serve((req) => {
      if (req.method === "GET") return { status: 200, body: view("prepared") };
      commits += 1;
      return commits === 1
        ? outcomeUnknown
        : { status: 200, body: view("committed", { decision: "commit" }) };
    });
    const result = await client([node.url]).commit(xid);
    assert.equal(result.state, "committed");
    const posts = node.seen.filter((s) => s.method === "POST");
    assert.equal(posts.length, 2);
    assert.equal(keyOf(posts[0]!), keyOf(posts[1]!));
  });

  test("an outcome that stays unknown ends in OutcomeUnknownError after the bounded checks", async () => {
    const node = await serve((req) =>
      req.method === "POST" ? outcomeUnknown : { status: 200, body: view("preparing") },
    );
    const err = await client([node.url], { outcomeChecksMax: 2 })
      .commit(xid)
      .then(
        () => assert.fail("commit resolved"),
        (e: unknown) => e,
      );
    assert.ok(err instanceof OutcomeUnknownError);
    assert.equal(err.xid, xid);
    assert.equal(err.lastState, "preparing");
    assert.equal(err.retryable, true);
    // 1 + outcomeChecksMax rounds of (commit, status).
    assert.equal(node.seen.length, 6);
  });

  test("409 aborted throws TransactionAbortedError with the reason, without retrying", async () => {
    const reason = { code: "vote-no", message: "expected 1 row, got 0", branch: 2 };
    const node = await serve(() => ({
      status: 409,
      body: {
        error: {
          code: "transaction-aborted",
          message: "transaction tx-1 aborted",
          retryable: false,
        },
        xid,
        state: "aborted",
        reason,
      },
    }));
    const err = await client([node.url])
      .commit(xid)
      .then(
        () => assert.fail("commit resolved"),
        (e: unknown) => e,
      );
    assert.ok(err instanceof TransactionAbortedError);
    assert.equal(err.code, "transaction-aborted");
    assert.equal(err.status, 409);
    assert.equal(err.xid, xid);
    assert.deepEqual(err.reason, reason);
    assert.equal(node.seen.length, 1);
  });

  test("an unknown commit resolved as aborted by the status throws TransactionAbortedError", async () => {
    const reason = { code: "deadline-passed", message: "deadline passed" };
    const node = await serve((req) =>
      req.method === "POST"
        ? outcomeUnknown
        : { status: 200, body: view("aborted", { decision: "abort", reason }) },
    );
    const err = await client([node.url])
      .commit(xid)
      .then(
        () => assert.fail("commit resolved"),
        (e: unknown) => e,
      );
    assert.ok(err instanceof TransactionAbortedError);
    assert.deepEqual(err.reason, reason);
  });

  test("a 404 status after outcome-unknown: the commit is repeated with the same key and its presumed abort thrown", async () => {
    const presumed = { code: "presumed-abort", message: "unknown to the log" };
    let commits = 0;
    const node = await serve((req) => {
      if (req.method === "GET") return notFound;
      commits += 1;
      return commits === 1 ? outcomeUnknown : abortedAnswer(presumed);
    });
    const err = await client([node.url])
      .commit(xid)
      .then(
        () => assert.fail("commit resolved"),
        (e: unknown) => e,
      );
    assert.ok(err instanceof TransactionAbortedError, String(err));
    assert.deepEqual(err.reason, presumed);
    assert.deepEqual(
      node.seen.map((s) => s.method),
      ["POST", "GET", "POST"],
    );
    const posts = node.seen.filter((s) => s.method === "POST");
    assert.equal(keyOf(posts[0]!), keyOf(posts[1]!));
  });

  test("a 404 status after outcome-unknown, then the repeated commit answers committed", async () => {
    let commits = 0;
    const node = await serve((req) => {
      if (req.method === "GET") return notFound;
      commits += 1;
      return commits === 1
        ? outcomeUnknown
        : { status: 200, body: view("committed", { decision: "commit" }) };
    });
    const result = await client([node.url]).commit(xid);
    assert.equal(result.state, "committed");
    assert.equal(commits, 2);
  });

  test("a connection lost on every attempt of the commit: the status and a repeat learn the outcome", async () => {
    let commits = 0;
    const node = await serve((req) => {
      if (req.method === "GET") return notFound;
      commits += 1;
      // attemptsMax (4) attempts of the first call lose their connection.
      return commits <= 4 ? "drop" : abortedAnswer({ code: "presumed-abort", message: "unknown" });
    });
    const err = await client([node.url])
      .commit(xid)
      .then(
        () => assert.fail("commit resolved"),
        (e: unknown) => e,
      );
    assert.ok(err instanceof TransactionAbortedError, String(err));
    assert.equal(commits, 5);
    const posts = node.seen.filter((s) => s.method === "POST");
    assert.equal(new Set(posts.map(keyOf)).size, 1, "one Idempotency-Key for every repeat");
  });

  test("a transaction no node knows: OutcomeUnknownError after the bounded rounds, the 404 as cause", async () => {
    const node = await serve((req, i) =>
      req.method === "POST" && i === 0 ? outcomeUnknown : notFound,
    );
    const err = await client([node.url], { outcomeChecksMax: 2 })
      .commit(xid)
      .then(
        () => assert.fail("commit resolved"),
        (e: unknown) => e,
      );
    assert.ok(err instanceof OutcomeUnknownError, String(err));
    assert.ok(err.cause instanceof VerdictError);
    assert.equal(err.cause.code, "transaction-not-found");
    assert.equal(node.seen.length, 6);
  });

  test("a 404 on the first commit, with no doubt before it, is thrown at once", async () => {
    const node = await serve(() => notFound);
    const err = await client([node.url])
      .commit(xid)
      .then(
        () => assert.fail("commit resolved"),
        (e: unknown) => e,
      );
    assert.ok(err instanceof VerdictError);
    assert.equal(err.code, "transaction-not-found");
    assert.equal(node.seen.length, 1);
  });

  test("resolving stops at outcomeTimeoutMs even with rounds left", async () => {
    const node = await serve((req) =>
      req.method === "POST" ? outcomeUnknown : { status: 200, body: view("preparing") },
    );
    const started = Date.now();
    const err = await client([node.url], {
      outcomeChecksMax: 100_000,
      outcomeTimeoutMs: 300,
      retry: { attemptsMax: 4, backoffMsInitial: 20, backoffMsMax: 20 },
    })
      .commit(xid)
      .then(
        () => assert.fail("commit resolved"),
        (e: unknown) => e,
      );
    assert.ok(err instanceof OutcomeUnknownError);
    assert.equal(err.lastState, "preparing");
    assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
  });

  test("abort after a commit decision answers transaction-committed", async () => {
    const node = await serve(() => apiError(409, "transaction-committed", false));
    const err = await client([node.url])
      .abort(xid)
      .then(
        () => assert.fail("abort resolved"),
        (e: unknown) => e,
      );
    assert.ok(err instanceof VerdictError);
    assert.equal(err.code, "transaction-committed");
    assert.equal(err.retryable, false);
  });
});

describe("bounded retries", () => {
  test("a node that stays unavailable: exactly attemptsMax requests, then the typed error", async () => {
    const node = await serve(() => unavailable);
    const err = await client([node.url])
      .begin()
      .then(
        () => assert.fail("begin resolved"),
        (e: unknown) => e,
      );
    assert.ok(err instanceof VerdictError);
    assert.equal(err.code, "unavailable");
    assert.equal(err.status, 503);
    assert.equal(err.retryable, true);
    assert.equal(node.seen.length, 4);
    assert.equal(new Set(node.seen.map(keyOf)).size, 1);
  });

  test("no node reachable: connection-failed after attemptsMax attempts", async () => {
    const err = await client([await refusingUrl(), await refusingUrl()])
      .status(xid)
      .then(
        () => assert.fail("status resolved"),
        (e: unknown) => e,
      );
    assert.ok(err instanceof VerdictError);
    assert.equal(err.code, "connection-failed");
    assert.equal(err.status, 0);
  });

  test("a non-retryable answer is thrown at once", async () => {
    const node = await serve(() =>
      apiError(400, "validation-failed", false, {
        issues: [{ path: "body.timeoutMs", message: "too small" }],
      }),
    );
    const err = await client([node.url])
      .begin({ timeoutMs: 1 })
      .then(
        () => assert.fail("begin resolved"),
        (e: unknown) => e,
      );
    assert.ok(err instanceof VerdictError);
    assert.equal(err.code, "validation-failed");
    assert.deepEqual(err.details, { issues: [{ path: "body.timeoutMs", message: "too small" }] });
    assert.equal(node.seen.length, 1);
  });

  test("a 502 without the API's body is retried on the next node", async () => {
    const proxy = await serve(() => ({ status: 502 }));
    const node = await serve(() => ({ status: 200, body: view("active") }));
    await client([proxy.url, node.url]).status(xid);
    assert.equal(proxy.seen.length, 1);
    assert.equal(node.seen.length, 1);
  });
});

test("options are checked", () => {
  assert.throws(() => new VerdictClient({ token: "t" }), RangeError);
  assert.throws(() => new VerdictClient({ baseUrl: "http://x", token: "" }), RangeError);
  assert.throws(
    () => new VerdictClient({ baseUrl: "http://x", token: "t", retry: { attemptsMax: 0 } }),
    RangeError,
  );
});
