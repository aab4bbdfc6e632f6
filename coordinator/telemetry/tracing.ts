/**
 * OpenTelemetry spans through @opentelemetry/api only. An operator who registers a tracer
 * provider (config `tracing.otlpEndpoint`, or their own, e.g. `node --import
 * ./otel-register.js …`) gets a span per request — continuing the caller's W3C
 * `traceparent` — and one per participant call and log append. Without one, nothing would
 * record or read a span, so none is made: no context, span or closure per call on the hot
 * path (docs/bench.md, "Node CPU per transfer").
 */
import {
  context,
  propagation,
  ProxyTracerProvider,
  SpanStatusCode,
  trace,
  type Attributes,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";

propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const tracer = trace.getTracer("verdict");

/** The API's no-op provider: what an unregistered global provider delegates to. */
const noProvider = new ProxyTracerProvider().getDelegate();

/**
 * Whether a tracer provider is registered globally, by anyone: registered, the global
 * provider is a proxy (of whichever copy of the API registered it) delegating to it; not
 * registered, it is this copy's proxy delegating to the no-op provider. Checked per call, so
 * a provider registered or removed later takes effect at once.
 */
export function spansRecorded(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== noProvider;
}

/** Runs `fn` in a span that continues the trace of the incoming request's headers. */
export function inRequestSpan<T>(
  name: string,
  headers: Record<string, string | string[] | undefined>,
  attributes: Attributes,
  fn: () => Promise<T>,
): Promise<T> {
  if (!spansRecorded()) return fn();
  const parent = propagation.extract(context.active(), headers);
  return context.with(parent, () => inSpan(name, attributes, fn));
}

/** Runs a participant call in a child span of whatever span is active. */
export function inSpan<T>(name: string, attributes: Attributes, fn: () => Promise<T>): Promise<T> {
  if (!spansRecorded()) return fn();
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
