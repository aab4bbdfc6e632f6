/**
 * Proves that a request's span continues the caller's W3C trace, as spans really recorded (a
 * recording tracer provider is registered, so a test that sees no span fails): the request
 * span is a child of the incoming `traceparent`, a participant call's span is a child of the
 * request span, both end; a request without a traceparent, or with a malformed one, still
 * gets its span, in a trace of its own; a failed call's span ends with an error status.
 */
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";
import { context, SpanStatusCode } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { inRequestSpan, inSpan } from "../../../coordinator/telemetry/tracing.js";
import { recordSpans } from "./recording-tracer.js";

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const spans = recordSpans();
beforeEach(() => {
  spans.length = 0;
});

const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
const callerSpanId = "00f067aa0ba902b7";
const traceparent = `00-${traceId}-${callerSpanId}-01`;

/** The one recorded span named `name`. */
function only(name: string) {
  const found = spans.filter((s) => s.name === name);
  assert.equal(found.length, 1, `spans named ${name}: ${JSON.stringify(spans)}`);
  return found[0]!;
}

test("a request span continues the caller's traceparent, and so do its participant calls", async () => {
  await inRequestSpan("commitTransaction", { traceparent }, { "verdict.xid": "x1" }, async () => {
    await new Promise((r) => setTimeout(r, 1));
    await inSpan("commit pg-a", { "verdict.participant": "pg-a" }, () => Promise.resolve());
  });
  assert.equal(spans.length, 2);
  const request = only("commitTransaction");
  const call = only("commit pg-a");
  assert.equal(request.traceId, traceId);
  assert.equal(request.parentSpanId, callerSpanId);
  assert.equal(request.attributes["verdict.xid"], "x1");
  assert.equal(call.traceId, traceId);
  assert.equal(call.parentSpanId, request.spanId);
  assert.equal(call.attributes["verdict.participant"], "pg-a");
  assert.ok(request.ended && call.ended, "both spans end");
});

test("without a traceparent the request still gets a span, in a trace of its own", async () => {
  await inRequestSpan("commitTransaction", {}, {}, () => Promise.resolve());
  const request = only("commitTransaction");
  assert.notEqual(request.traceId, traceId);
  assert.equal(request.parentSpanId, undefined);
  assert.ok(request.ended);
});

test("a malformed traceparent is ignored: a span of its own trace", async () => {
  await inRequestSpan("getTransaction", { traceparent: "00-zz-yy-01" }, {}, () =>
    Promise.resolve(),
  );
  const request = only("getTransaction");
  assert.notEqual(request.traceId, traceId);
  assert.equal(request.parentSpanId, undefined);
});

test("a call that throws ends its span with an error status", async () => {
  await assert.rejects(
    inSpan("prepare pg-a", {}, () => Promise.reject(new Error("down"))),
    /down/,
  );
  const call = only("prepare pg-a");
  assert.equal(call.status?.code, SpanStatusCode.ERROR);
  assert.ok(call.ended);
});
