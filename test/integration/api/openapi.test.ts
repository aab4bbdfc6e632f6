/**
 * The document served at /openapi.json lists exactly the routes the server answers:
 * - it lists every route of the contract's table, and there are some (a loop below that
 *   checked no route fails);
 * - every documented path + method is routed (never the 404 `not-found` route error), the
 *   probes (/livez, /readyz, /healthz) without a token;
 * - every other method on a documented path answers 405 `method-not-allowed` with `Allow` (before
 *   its body is read), an undocumented path 404 `not-found`, in the one error shape;
 * - the enlist schema names exactly this node's participants of each branch kind, and a path
 *   parameter over the router's length limit answers the documented 400 `validation-failed`;
 * - beside the document, the node serves only /openapi.json and /metrics.
 * And /metrics exposes verdict_transactions_in_flight (following a begin and its abort) and
 * verdict_log_fsync_seconds (observing the fsyncs of a commit).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { buildRoutes } from "../../../coordinator/api/contract/routes.js";
import { defaultSchemas } from "../../../coordinator/api/contract/schemas.js";
import { pgStatements, sql, VerdictClient } from "../../../client/index.js";
import { assertError, preparedOf, raw, startApiNode, type ApiNode } from "./harness.js";
import { openStream } from "./event-stream.js";

let node: ApiNode;
let paths: Record<string, Record<string, unknown>>;

before(async () => {
  node = await startApiNode();
  const answer = await raw(node.url, "GET", "/openapi.json");
  assert.equal(answer.status, 200, answer.text);
  paths = (answer.body as { openapi: string; paths: typeof paths }).paths;
});

after(async () => {
  await node?.stop();
});

const methods = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;
const operational = ["/openapi.json", "/metrics"];
const sampleXid = "0123456789abcdef0123456789abcdef";
const concrete = (path: string) => path.replace("{xid}", sampleXid).replace("{n}", "1");

function documentedRoutes(): string[] {
  return Object.entries(paths).flatMap(([path, ops]) =>
    Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
  );
}

describe("the OpenAPI document matches the router", () => {
  test("the document lists the client API", () => {
    const routes = documentedRoutes();
    for (const route of [
      "POST /v1/transactions",
      "GET /v1/transactions/{xid}",
      "POST /v1/transactions/{xid}/branches",
      "POST /v1/transactions/{xid}/branches/{n}/prepared",
      "POST /v1/transactions/{xid}/prepare",
      "POST /v1/transactions/{xid}/commit",
      "POST /v1/transactions/{xid}/abort",
    ]) {
      assert.ok(routes.includes(route), `${route} documented`);
    }
  });

  test("the document lists every route of the contract's table, and there are some", () => {
    const table = buildRoutes(defaultSchemas).map((r) => `${r.method} ${r.path}`);
    assert.ok(table.length > 0, "the route table is empty");
    assert.deepEqual(documentedRoutes().sort(), table.sort());
  });

  const streamAnswer = async (path: string) => {
    const s = await openStream(node.url, path, node.adminToken);
    s.close();
    return { status: s.status, body: s.body, text: JSON.stringify(s.body) ?? "(a stream)" };
  };

  test("every documented route is answered (never the not-found route error)", async () => {
    const answered: string[] = [];
    const publicPaths = buildRoutes(defaultSchemas)
      .filter((r) => r.auth === "public")
      .map((r) => r.path);
    // An event stream (the admin one never ends by itself) is read for its status only.
    const streams = buildRoutes(defaultSchemas)
      .filter((r) => r.stream)
      .map((r) => `${r.method} ${r.path}`);
    for (const route of documentedRoutes()) {
      const [method = "", path = ""] = route.split(" ");
      const answer = streams.includes(route)
        ? await streamAnswer(concrete(path))
        : await raw(node.url, method, concrete(path), {
            // The probes answer without a token.
            ...(publicPaths.includes(path) ? {} : { token: node.adminToken }),
            ...(method === "POST" ? { body: {} } : {}),
          });
      answered.push(route);
      const code = (answer.body as { error?: { code?: string } } | undefined)?.error?.code;
      assert.notEqual(code, "not-found", `${route} → ${answer.status} ${answer.text}`);
      assert.ok(answer.status !== 404 || code === "transaction-not-found", route);
      // The begin above started a transaction: abort it so that the metrics below start idle.
      const begun = answer.status === 201 ? (answer.body as { xid?: string }).xid : undefined;
      if (route === "POST /v1/transactions" && begun !== undefined) {
        const abort = await raw(node.url, "POST", `/v1/transactions/${begun}/abort`, {
          token: node.adminToken,
          body: {},
        });
        assert.equal(abort.status, 200, abort.text);
      }
    }
    assert.ok(answered.length > 0, "no documented route was tried");
    for (const path of publicPaths) {
      assert.equal((await raw(node.url, "GET", path)).status, 200, `${path} without a token`);
    }
  });

  test("other methods on documented paths answer 405 method-not-allowed with Allow", async () => {
    let tried = 0;
    for (const [path, ops] of Object.entries(paths)) {
      const allow = methods.filter((m) => m.toLowerCase() in ops).join(", ");
      for (const method of [...methods, "QUERY"]) {
        if (method.toLowerCase() in ops) continue;
        // A body the parser would refuse: the 405 comes before any body is read (fetch sends
        // none with GET).
        const answer = await raw(node.url, method, concrete(path), {
          token: node.adminToken,
          ...(method === "GET" ? {} : { rawBody: "{" }),
        });
        assertError(answer, 405, "method-not-allowed", `${method} ${path}`);
        assert.equal(answer.headers.get("allow"), allow, `${method} ${path}: Allow`);
        tried += 1;
      }
    }
    assert.ok(tried > 0, "no other method was tried");
  });

  test("the served enlist schema names exactly this node's participants", async () => {
    const doc = (await raw(node.url, "GET", "/openapi.json")).body as {
      components: { schemas: Record<string, { properties: { participant: unknown } }> };
    };
    const { schemas } = doc.components;
    const pg = { enum: ["pg-a", "pg-b"], description: "A postgres participant of this node." };
    assert.deepEqual(schemas.PgStatementsBranch?.properties.participant, { type: "string", ...pg });
    assert.deepEqual(schemas.PgServicePreparedBranch?.properties.participant, {
      type: "string",
      ...pg,
    });
    for (const [component, kind] of [
      ["RedisBranch", "redis"],
      ["KafkaBranch", "kafka"],
    ]) {
      assert.deepEqual(
        schemas[component ?? ""]?.properties.participant,
        { not: {}, description: `This node has no ${kind} participant.` },
        component,
      );
    }
  });

  test("a path parameter over the router's length limit answers 400 validation-failed", async () => {
    const answer = await raw(node.url, "GET", `/v1/transactions/${"x".repeat(5_000)}`, {
      token: node.adminToken,
    });
    assertError(answer, 400, "validation-failed", "a 5,000-character xid");
  });

  test("an undocumented path answers 404 not-found; operational endpoints are served", async () => {
    for (const path of ["/v1/nothing", "/v2/transactions", "/admin/v1/nothing", "/"]) {
      assertError(
        await raw(node.url, "GET", path, { token: node.adminToken }),
        404,
        "not-found",
        path,
      );
    }
    for (const path of operational) {
      assert.equal(paths[path], undefined, `${path} is operational, not in the API document`);
      const answer = await raw(node.url, "GET", path);
      assert.equal(answer.status, 200, `${path} → ${answer.status}`);
    }
  });
});

describe("/metrics", () => {
  const metric = async (name: string): Promise<number | undefined> => {
    const text = (await raw(node.url, "GET", "/metrics")).text;
    const line = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text);
    return line?.[1] === undefined ? undefined : Number(line[1]);
  };

  test("verdict_transactions_in_flight follows a begin and its abort", async () => {
    const client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
    const idle = await metric("verdict_transactions_in_flight");
    assert.equal(idle, 0, "no transaction is left in flight by the tests above");
    const txns = [
      await client.begin({ timeoutMs: 10_000 }),
      await client.begin({ timeoutMs: 10_000 }),
    ];
    assert.equal(await metric("verdict_transactions_in_flight"), 2);
    for (const txn of txns) await client.abort(txn.xid);
    assert.equal(await metric("verdict_transactions_in_flight"), 0);
  });

  test("verdict_log_fsync_seconds observes the fsyncs of a commit", async () => {
    const client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
    const before = (await metric("verdict_log_fsync_seconds_count")) ?? 0;
    const txn = await client.begin({ timeoutMs: 10_000 });
    await client.enlist(txn.xid, pgStatements("pg-a", [sql("select 1")]));
    await client.enlist(txn.xid, pgStatements("pg-b", [sql("select 1")]));
    assert.equal((await client.commit(txn.xid)).state, "committed");
    const after = (await metric("verdict_log_fsync_seconds_count")) ?? 0;
    // Two-phase commit: the `preparing` entry and the decision, each fsynced.
    assert.ok(after - before >= 2, `fsyncs observed: ${after - before}`);
    assert.ok((await metric("verdict_log_fsync_seconds_sum")) !== undefined);
    const text = (await raw(node.url, "GET", "/metrics")).text;
    assert.match(text, /^# TYPE verdict_log_fsync_seconds histogram$/m);
    assert.match(text, /^# TYPE verdict_transactions_in_flight gauge$/m);
    assert.deepEqual(await preparedOf(node.node.clusterId), []);
  });
});
