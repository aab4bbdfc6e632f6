/**
 * The API does what its OpenAPI document says at the edges a probe found:
 * - prepare after commit answers 409 invalid-state with `details.state`, a status and code the
 *   document lists for prepare (it answered 200 `committed`, which the document did not allow);
 * - header fields over Node's limit answer 431 in the one error shape (`headers-too-large`);
 * - a body that is not valid UTF-8 answers 400 invalid-utf8 and begins nothing (it was
 *   silently repaired with U+FFFD);
 * - a label value with a C0 control character (other than tab) or an unpaired surrogate
 *   answers 400 validation-failed; a tab is kept;
 * - a malformed `traceparent` is ignored (W3C), and the document does not promise a pattern;
 * - every 429 in the document declares its Retry-After header.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  assertError,
  createAccounts,
  metricValue,
  raw,
  startApiNode,
  type Accounts,
  type ApiNode,
} from "./harness.js";

let node: ApiNode;
let accounts: Accounts;
type Json = Record<string, unknown>;
let doc: { paths: Record<string, Record<string, Json>>; components: Json };

const begin = (body: unknown, headers: Record<string, string> = {}) =>
  raw(node.url, "POST", "/v1/transactions", { token: node.clientToken, body, headers });

describe("contract edges", () => {
  before(async () => {
    // Transactions left active at the end are aborted at once, not waited for.
    node = await startApiNode({ protocol: { shutdownGraceMs: 0 } });
    accounts = await createAccounts({ "pg-a": [[1, 100]], "pg-b": [] });
    doc = (await raw(node.url, "GET", "/openapi.json")).body as typeof doc;
  });
  after(async () => {
    await accounts?.drop();
    await node?.stop();
  });

  test("prepare after commit: 409 invalid-state with the state, as documented", async () => {
    const b = await begin({});
    const xid = (b.body as { xid: string }).xid;
    const statements = [{ sql: `update ${accounts.table} set balance = 99 where id = 1` }];
    const enlist = await raw(node.url, "POST", `/v1/transactions/${xid}/branches`, {
      token: node.clientToken,
      body: { participant: "pg-a", statements },
    });
    assert.equal(enlist.status, 201, enlist.text);
    const commit = await raw(node.url, "POST", `/v1/transactions/${xid}/commit`, {
      token: node.clientToken,
    });
    assert.equal(commit.status, 200, commit.text);
    const prepare = await raw(node.url, "POST", `/v1/transactions/${xid}/prepare`, {
      token: node.clientToken,
    });
    assertError(prepare, 409, "invalid-state", "prepare after commit");
    const details = (prepare.body as { error: { details: Json } }).error.details;
    assert.equal(details.state, "committed");
    const documented = doc.paths["/v1/transactions/{xid}/prepare"]?.post?.responses as Json;
    assert.ok(
      (documented["409"] as { "x-error-codes": string[] })["x-error-codes"].includes(
        "invalid-state",
      ),
    );
    assert.equal(await accounts.balance("pg-a", 1), 99, "the commit stands");
  });

  test("header fields over the limit: 431 headers-too-large in the error shape", async () => {
    const answer = await begin({}, { "x-padding": "p".repeat(20 * 1024) });
    assertError(answer, 431, "headers-too-large", "20 KiB header");
  });

  test("a body that is not UTF-8: 400 invalid-utf8, nothing begun", async () => {
    const before = await metricValue(node.url, "verdict_transactions_in_flight");
    const bytes = Buffer.concat([
      Buffer.from('{"labels":{"who":"'),
      Buffer.from([0xff, 0xfe, 0x41]),
      Buffer.from('"}}'),
    ]);
    const response = await fetch(`${node.url}/v1/transactions`, {
      method: "POST",
      headers: { authorization: `Bearer ${node.clientToken}`, "content-type": "application/json" },
      body: bytes,
    });
    const text = await response.text();
    assertError(
      { status: response.status, headers: response.headers, text, body: JSON.parse(text) },
      400,
      "invalid-utf8",
      "invalid UTF-8 label",
    );
    assert.equal(await metricValue(node.url, "verdict_transactions_in_flight"), before);
  });

  test("label values: C0 controls and unpaired surrogates refused, a tab kept", async () => {
    for (const value of ["a\u0000b", "line\nbreak", "bell\u0007", "esc\u001b[31m", "\ud800"]) {
      assertError(
        await begin({ labels: { note: value } }),
        400,
        "validation-failed",
        JSON.stringify(value),
      );
    }
    const tab = await begin({ labels: { note: "a\tb" } });
    assert.equal(tab.status, 201, tab.text);
    assert.deepEqual((tab.body as { labels: Json }).labels, { note: "a\tb" });
  });

  test("a malformed traceparent is ignored, and the document promises no pattern", async () => {
    const answer = await begin({}, { traceparent: "not-a-trace-context" });
    assert.equal(answer.status, 201, answer.text);
    const parameters = doc.components.parameters as Record<string, { schema: Json }>;
    assert.equal(parameters.Traceparent?.schema.pattern, undefined);
  });

  test("every documented 429 declares Retry-After", () => {
    let seen = 0;
    for (const operations of Object.values(doc.paths)) {
      for (const op of Object.values(operations)) {
        const r429 = (op.responses as Record<string, { headers?: Json }>)["429"];
        if (!r429) continue;
        seen += 1;
        assert.ok(r429.headers?.["Retry-After"], `${String(op.operationId)}: no Retry-After`);
      }
    }
    assert.ok(seen > 0, "some route answers 429");
  });
});
