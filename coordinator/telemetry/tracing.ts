/**
 * OpenTelemetry spans through @opentelemetry/api only: without an SDK they cost nothing;
 * an operator who registers one (e.g. `node --import ./otel-register.js …`) gets a span per
 * request — continuing the caller's W3C `traceparent` — and one per participant call.
 */
import { context, propagation, SpanStatusCode, trace, type Attributes } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";

propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const tracer = trace.getTracer("verdict");

/** Runs `fn` in a span that continues the trace of the incoming request's headers. */
export function inRequestSpan<T>(
  name: string,
  headers: Record<string, string | string[] | undefined>,
  attributes: Attributes,
  fn: () => Promise<T>,
): Promise<T> {
  const parent = propagation.extract(context.active(), headers);
  return context.with(parent, () => inSpan(name, attributes, fn));
}

/** Runs a participant call in a child span of whatever span is active. */
export function inSpan<T>(name: string, attributes: Attributes, fn: () => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn();
    } catch (e) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(e) });
      throw e;
    } finally {
      span.end();
    }
  });
}
