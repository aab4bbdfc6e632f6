/**
 * Traces reach a real OTLP/HTTP receiver (a small collector in this test that decodes the
 * JSON encoding): a transfer through the node, sent with the caller's `traceparent`, yields
 * the request spans in the caller's trace, and in that same trace a span per participant
 * call (prepare and commit on both databases) and per log append. With no endpoint
 * configured, nothing is sent.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { otlpTracesEndpoint } from "../../../coordinator/telemetry/otel.js";
import {
  createAccounts,
  raw,
  startApiNode,
  waitFor,
  type Accounts,
  type ApiNode,
} from "../api/harness.js";

interface ReceivedSpan {
  readonly traceId: string;
  readonly name: string;
  readonly service: string | undefined;
}

const received: ReceivedSpan[] = [];
let collector: Server;
let node: ApiNode;
let accounts: Accounts;

/** Flattens an OTLP/HTTP JSON export request into its spans. */
function spansOf(body: unknown): ReceivedSpan[] {
  type Attr = { key: string; value: { stringValue?: string } };
  type Export = {
    resourceSpans?: {
      resource?: { attributes?: Attr[] };
      scopeSpans?: { spans?: { traceId: string; name: string }[] }[];
    }[];
  };
  const out: ReceivedSpan[] = [];
  for (const rs of (body as Export).resourceSpans ?? []) {
    const service = rs.resource?.attributes?.find((a) => a.key === "service.name")?.value
      .stringValue;
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) out.push({ traceId: s.traceId, name: s.name, service });
    }
  }
  return out;
}

before(async () => {
  collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/v1/traces") {
        received.push(...spansOf(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((ready) => collector.listen(0, "127.0.0.1", ready));
  const { port } = collector.address() as AddressInfo;
  node = await startApiNode({
    tracing: { otlpEndpoint: `http://127.0.0.1:${port}/v1/traces`, exportDelayMs: 50 },
  });
  accounts = await createAccounts({ "pg-a": [[1, 100]], "pg-b": [[1, 0]] });
});

after(async () => {
  await node?.stop();
  await accounts?.drop();
  collector?.close();
});

test("a transfer's spans reach the collector in the caller's trace", async () => {
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const call = async (method: string, path: string, body?: unknown) => {
    const answer = await raw(node.url, method, path, {
      token: node.clientToken,
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      ...(body === undefined ? {} : { body }),
    });
    assert.ok(
      answer.status < 300,
      `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`,
    );
    return answer.body as { xid: string; state: string };
  };
  const { xid } = await call("POST", "/v1/transactions", { timeoutMs: 30_000 });
  for (const [db, sign] of [
    ["pg-a", "-"],
    ["pg-b", "+"],
  ] as const) {
    const text = `update ${accounts.table} set balance = balance ${sign} 5 where id = 1`;
    await call("POST", `/v1/transactions/${xid}/branches`, {
      participant: db,
      statements: [{ sql: text, expectRows: 1 }],
    });
  }
  assert.equal((await call("POST", `/v1/transactions/${xid}/commit`)).state, "committed");
  assert.equal(await accounts.balance("pg-b", 1), 5);

  const wanted = ["prepare pg-a", "prepare pg-b", "commit pg-a", "commit pg-b", "log append"];
  const names = await waitFor("the transfer's spans at the collector", () => {
    const inTrace = received.filter((s) => s.traceId === traceId).map((s) => s.name);
    return Promise.resolve(wanted.every((w) => inTrace.includes(w)) ? inTrace : undefined);
  });
  assert.ok(names.includes("commitTransaction"), `request span missing: ${names.join(", ")}`);
  assert.ok(received.every((s) => s.service === "verdict"));
});

test("no endpoint configured: no traces are exported", () => {
  assert.equal(otlpTracesEndpoint({ serviceName: "verdict", exportDelayMs: 1000 }, {}), undefined);
  assert.equal(
    otlpTracesEndpoint(
      { serviceName: "verdict", exportDelayMs: 1000 },
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318/",
      },
    ),
    "http://127.0.0.1:4318/v1/traces",
  );
  assert.equal(
    otlpTracesEndpoint(
      { serviceName: "verdict", exportDelayMs: 1000, otlpEndpoint: "http://a/v1/traces" },
      { OTEL_SDK_DISABLED: "true" },
    ),
    undefined,
  );
});
