/**
 * Proves that a request's span continues the caller's W3C trace: inside the handler, the active
 * span carries the trace id of the incoming `traceparent` (and a participant call's span, made
 * inside it, the same trace), while a request without one starts no trace of the caller's.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { inRequestSpan, inSpan } from "../../../coordinator/telemetry/tracing.js";

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
const traceparent = `00-${traceId}-00f067aa0ba902b7-01`;

const activeTraceId = () => trace.getActiveSpan()?.spanContext().traceId;

test("a request span continues the caller's traceparent, and so do its participant calls", async () => {
  const seen = await inRequestSpan("commitTransaction", { traceparent }, {}, async () => {
    await new Promise((r) => setTimeout(r, 1));
    const inner = await inSpan("commit pg-a", {}, () => Promise.resolve(activeTraceId()));
    return { outer: activeTraceId(), inner };
  });
  assert.deepEqual(seen, { outer: traceId, inner: traceId });
});

test("without a traceparent the caller's trace is not invented", async () => {
  const seen = await inRequestSpan("commitTransaction", {}, {}, () =>
    Promise.resolve(activeTraceId()),
  );
  assert.notEqual(seen, traceId);
});

test("a malformed traceparent is ignored", async () => {
  const seen = await inRequestSpan("getTransaction", { traceparent: "00-zz-yy-01" }, {}, () =>
    Promise.resolve(activeTraceId()),
  );
  assert.notEqual(seen, traceId);
});
