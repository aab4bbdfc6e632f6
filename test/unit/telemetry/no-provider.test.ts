/**
 * Proves that with no tracer provider registered (no endpoint configured, none registered by
 * the operator) the hot path makes no span and installs no context manager, whose hook on
 * every promise costs CPU for nothing: the call runs with no active span, and a context set
 * around an await is not carried through it. Then, a provider registered later is used at
 * once: spans are recorded from the next call.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { context, createContextKey, trace } from "@opentelemetry/api";
import { startTracing } from "../../../coordinator/telemetry/otel.js";
import { inRequestSpan, inSpan, spansRecorded } from "../../../coordinator/telemetry/tracing.js";
import { recordSpans } from "./recording-tracer.js";

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

test("no provider: no span, no context manager; a provider registered later records", async () => {
  delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const tracing = startTracing({ serviceName: "verdict", exportDelayMs: 1000 }, "n1");
  assert.equal(tracing.endpoint, undefined);
  assert.equal(spansRecorded(), false);

  // The call's own promise comes back: no span, not even a non-recording one, wraps it.
  const call = Promise.resolve(trace.getActiveSpan());
  assert.equal(
    inRequestSpan("commitTransaction", { traceparent }, {}, () => call),
    call,
  );
  assert.equal(
    inSpan("prepare pg-a", {}, () => call),
    call,
  );
  assert.equal(await call, undefined);

  const key = createContextKey("probe");
  const carried = await context.with(context.active().setValue(key, 1), async () => {
    await new Promise((r) => setImmediate(r));
    return context.active().getValue(key);
  });
  assert.equal(carried, undefined, "no context manager carries a context through an await");

  const spans = recordSpans();
  assert.equal(spansRecorded(), true);
  await inSpan("prepare pg-a", {}, () => Promise.resolve());
  assert.deepEqual(
    spans.map((s) => s.name),
    ["prepare pg-a"],
  );
  await tracing.shutdown();
});
