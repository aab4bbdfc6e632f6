// Proves the OpenAPI document built from the route table is well-formed: the table is not
// empty and every one of its routes is present once and checked (a loop over no route fails), every path parameter is declared, every response has a schema
// (a stream's success: text/event-stream, each event's JSON data named by its schema),
// error responses use the one error shape, every $ref resolves, idempotent routes take
// an Idempotency-Key, the probes (/livez, /readyz, /healthz) need no token, and the published JSON Schemas agree with the zod schemas on the
// §5 examples and on malformed bodies (checked with Ajv, fastify's own validator).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Ajv2020 } from "ajv/dist/2020.js";
import { buildOpenApiDocument } from "../../../coordinator/api/contract/openapi.js";
import type { OpenApiDocument } from "../../../coordinator/api/contract/openapi.js";
import {
  buildRoutes,
  fastifyPath,
  pathParamNames,
} from "../../../coordinator/api/contract/routes.js";
import { defaultSchemas } from "../../../coordinator/api/contract/schemas.js";
import { errorCatalogue } from "../../../coordinator/api/contract/errors.js";

const routes = buildRoutes(defaultSchemas);
const doc: OpenApiDocument = buildOpenApiDocument(defaultSchemas, routes, {
  version: "0.1.0",
  serverUrls: ["http://127.0.0.1:7700"],
});
type Json = Record<string, unknown>;
const operation = (path: string, method: string): Json => {
  const op = doc.paths[path]?.[method.toLowerCase()];
  assert.ok(op, `${method} ${path} missing`);
  return op;
};

/** Every `$ref` anywhere in `value`. */
function refs(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) refs(v, out);
  else if (typeof value === "object" && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (k === "$ref" && typeof v === "string") out.push(v);
      else refs(v, out);
    }
  }
  return out;
}

describe("route table", () => {
  test("ids and (method, path) pairs are unique; paths carry their prefix by auth", () => {
    assert.ok(routes.length > 0, "the route table is empty");
    assert.equal(new Set(routes.map((r) => r.id)).size, routes.length);
    assert.equal(new Set(routes.map((r) => `${r.method} ${r.path}`)).size, routes.length);
    const prefix = { admin: /^\/admin\/v1\//, client: /^\/v1\//, public: /^\/[a-z]+z$/ };
    for (const r of routes) assert.match(r.path, prefix[r.auth], r.id);
  });

  test("the probes are public GET routes: /livez, /readyz, /healthz", () => {
    const probes = routes.filter((r) => r.auth === "public");
    assert.deepEqual(probes.map((r) => `${r.method} ${r.path}`).sort(), [
      "GET /healthz",
      "GET /livez",
      "GET /readyz",
    ]);
  });

  test("covers the §5 client API and the admin API", () => {
    const have = new Set(routes.map((r) => `${r.method} ${r.path}`));
    for (const want of [
      "POST /v1/transactions",
      "GET /v1/transactions/{xid}",
      "POST /v1/transactions/{xid}/branches",
      "POST /v1/transactions/{xid}/branches/{n}/prepared",
      "POST /v1/transactions/{xid}/prepare",
      "POST /v1/transactions/{xid}/commit",
      "POST /v1/transactions/{xid}/abort",
      "GET /admin/v1/transactions",
      "GET /admin/v1/transactions/{xid}",
      "GET /admin/v1/participants",
      "GET /admin/v1/cluster",
    ]) {
      assert.ok(have.has(want), want);
    }
  });

  test("fastifyPath and pathParamNames", () => {
    const p = "/v1/transactions/{xid}/branches/{n}/prepared";
    assert.equal(fastifyPath(p), "/v1/transactions/:xid/branches/:n/prepared");
    assert.deepEqual(pathParamNames(p), ["xid", "n"]);
  });

  test("mutating client calls are idempotent; reads are not", () => {
    for (const r of routes) {
      if (r.method === "GET") assert.equal(r.idempotent, false, r.id);
      else if (r.auth === "client") assert.equal(r.idempotent, true, r.id);
    }
  });
});

describe("OpenAPI document", () => {
  test("is OpenAPI 3.1, serializable, with both bearer schemes", () => {
    assert.equal(doc.openapi, "3.1.0");
    assert.deepEqual(JSON.parse(JSON.stringify(doc)), doc);
    assert.equal(doc.components.securitySchemes.clientToken?.scheme, "bearer");
    assert.equal(doc.components.securitySchemes.adminToken?.scheme, "bearer");
    for (const code of Object.keys(errorCatalogue))
      assert.ok(doc.info.description.includes(`\`${code}\``));
  });

  test("has exactly the routes of the table, and at least one", () => {
    const ops = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
    );
    assert.ok(ops.length > 0, "the document has no operation");
    assert.deepEqual(ops.sort(), routes.map((r) => `${r.method} ${r.path}`).sort());
  });

  /** Routes whose operation the loop below checked: the count is checked after it. */
  const checked = new Set<string>();
  for (const route of routes) {
    test(`${route.method} ${route.path}: parameters, responses, security`, () => {
      const op = operation(route.path, route.method);
      assert.equal(op.operationId, route.id);
      const params = (op.parameters as Json[]).filter((p) => p.in === "path");
      assert.deepEqual(params.map((p) => p.name).sort(), pathParamNames(route.path).sort());
      for (const p of params) {
        assert.equal(p.required, true);
        assert.ok(p.schema, `${String(p.name)} has no schema`);
      }
      const headerRefs = refs(op.parameters);
      assert.ok(headerRefs.includes("#/components/parameters/Traceparent"));
      assert.equal(headerRefs.includes("#/components/parameters/IdempotencyKey"), route.idempotent);

      const responses = op.responses as Record<string, Json>;
      assert.ok(
        Object.keys(responses).some((s) => s.startsWith("2")),
        "a success response",
      );
      for (const [status, response] of Object.entries(responses)) {
        // A stream's success is an event stream, each event's data the route's 200 schema.
        const mediaType =
          route.stream && Number(status) < 300 ? "text/event-stream" : "application/json";
        const schema = (response.content as Json | undefined)?.[mediaType] as Json | undefined;
        if (mediaType === "text/event-stream") {
          const event = schema?.schema as { properties: Record<string, Json> } | undefined;
          assert.deepEqual(event?.properties.event, { const: route.stream?.event });
          assert.equal(event?.properties.data?.contentMediaType, "application/json");
          assert.equal(refs(event?.properties.data).length, 1, "the data's schema");
        }
        assert.ok(schema?.schema, `${status} has a schema`);
        if (Number(status) >= 400) {
          assert.ok(
            refs(schema.schema).includes("#/components/schemas/ErrorBody"),
            `${status} uses ErrorBody`,
          );
          for (const code of response["x-error-codes"] as (keyof typeof errorCatalogue)[]) {
            assert.equal(errorCatalogue[code].status, Number(status), code);
          }
        }
      }
      const security = op.security as Json[];
      if (route.auth === "public") assert.deepEqual(security, []);
      else {
        assert.ok(
          security.some((s) => (route.auth === "admin" ? "adminToken" : "clientToken") in s),
        );
        if (route.auth === "admin") assert.ok(!security.some((s) => "clientToken" in s));
      }
      checked.add(route.id);
    });
  }

  test("the loop above checked every route of the table, and there are some", () => {
    assert.ok(checked.size > 0, "no route was checked");
    assert.deepEqual([...checked].sort(), routes.map((r) => r.id).sort());
  });

  test("every $ref resolves", () => {
    for (const ref of refs(doc)) {
      const [, section, name] = /^#\/components\/(schemas|parameters)\/(.+)$/.exec(ref) ?? [];
      assert.ok(section && name, `unexpected ref ${ref}`);
      assert.ok(doc.components[section as "schemas" | "parameters"][name], `dangling ${ref}`);
    }
  });
});

describe("published JSON Schemas agree with the zod schemas", () => {
  const ajv = new Ajv2020({ strict: false, validateFormats: false });
  for (const [name, schema] of Object.entries(doc.components.schemas)) {
    ajv.addSchema(schema, `#/components/schemas/${name}`);
  }
  const validate = (name: string, value: unknown): boolean => {
    const fn = ajv.getSchema(`#/components/schemas/${name}`);
    assert.ok(fn, name);
    return fn(value) === true;
  };

  const bodies: [string, unknown, boolean][] = [
    ["BeginRequest", { timeoutMs: 30000, labels: { order: "42" } }, true],
    ["BeginRequest", {}, true],
    ["BeginRequest", { timeoutMs: "30000" }, false],
    ["BeginRequest", { timeoutMs: 30000, extra: 1 }, false],
    ["BeginRequest", { timeoutMs: 1 }, false],
    [
      "EnlistRequest",
      {
        participant: "pg-orders",
        statements: [{ sql: "update t set a = $1", params: [10, 1], expectRows: 1 }],
      },
      true,
    ],
    ["EnlistRequest", { participant: "pg-orders", servicePrepared: true }, true],
    [
      "EnlistRequest",
      {
        participant: "redis-main",
        ops: [{ op: "incrby", key: "{acct}:7", by: 10 }],
        preconditions: [{ key: "{acct}:7", exists: true }],
      },
      true,
    ],
    [
      "EnlistRequest",
      { participant: "kafka-events", messages: [{ topic: "transfers", key: "7", value: "v" }] },
      true,
    ],
    [
      "EnlistRequest",
      { participant: "pg-orders", servicePrepared: true, statements: [{ sql: "select 1" }] },
      false,
    ],
    ["EnlistRequest", { participant: "pg-orders" }, false],
    ["EnlistRequest", { participant: "r", ops: [{ op: "incrby", key: "k", by: 1.5 }] }, false],
    ["EnlistRequest", { participant: "r", ops: [{ op: "del", key: "k", value: "v" }] }, false],
    ["EmptyRequest", {}, true],
    ["EmptyRequest", { force: true }, false],
  ];
  for (const [name, value, valid] of bodies) {
    test(`${name} ${valid ? "accepts" : "rejects"} ${JSON.stringify(value)}`, () => {
      assert.equal(validate(name, value), valid, "JSON Schema");
      const zodName = (name.charAt(0).toLowerCase() + name.slice(1)) as keyof typeof defaultSchemas;
      const zodSchema = defaultSchemas[zodName];
      assert.ok(typeof zodSchema === "object" && "safeParse" in zodSchema);
      assert.equal(zodSchema.safeParse(value).success, valid, "zod");
    });
  }

  test("the error shape and the 409 aborted body", () => {
    const error = { error: { code: "transaction-aborted", message: "m", retryable: false } };
    const reason = { code: "deadline-passed", message: "deadline passed" };
    assert.ok(validate("ErrorBody", error));
    assert.ok(
      !validate("ErrorBody", { error: { code: "no-such-code", message: "m", retryable: false } }),
    );
    assert.ok(
      validate("TransactionAbortedBody", { ...error, xid: "tx", state: "aborted", reason }),
    );
    assert.ok(
      !validate("TransactionAbortedBody", { ...error, xid: "tx", state: "committed", reason }),
    );
  });
});
