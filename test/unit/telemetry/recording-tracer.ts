/**
 * A tracer provider that records every span it starts, for tests: the OpenTelemetry SDK is
 * not a dependency, and without a provider the API's no-op spans carry a caller's trace id
 * through, so a test reading only the active trace id passes whether a span was made or not.
 * Spans here have their own ids, remember their parent and whether they ended.
 */
import { randomBytes } from "node:crypto";
import {
  context as contextApi,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";

export interface RecordedSpan {
  readonly name: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly attributes: Attributes;
  status: SpanStatus | undefined;
  ended: boolean;
}

const hex = (bytes: number) => randomBytes(bytes).toString("hex");

class RecordingSpan implements Span {
  constructor(
    private readonly ctx: SpanContext,
    readonly record: RecordedSpan,
  ) {}
  spanContext(): SpanContext {
    return this.ctx;
  }
  setAttribute(key: string, value: Attributes[string]): this {
    (this.record.attributes as Record<string, unknown>)[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    Object.assign(this.record.attributes, attributes);
    return this;
  }
  addEvent(): this {
    return this;
  }
  addLink(): this {
    return this;
  }
  addLinks(): this {
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.record.status = status;
    return this;
  }
  updateName(): this {
    return this;
  }
  end(): void {
    this.record.ended = true;
  }
  isRecording(): boolean {
    return !this.record.ended;
  }
  recordException(): void {}
}

class RecordingTracer implements Tracer {
  constructor(private readonly spans: RecordedSpan[]) {}

  startSpan(name: string, options: SpanOptions = {}, ctx: Context = contextApi.active()): Span {
    const parent = trace.getSpanContext(ctx);
    const valid = parent !== undefined && trace.isSpanContextValid(parent);
    const spanContext: SpanContext = {
      traceId: valid ? parent.traceId : hex(16),
      spanId: hex(8),
      traceFlags: TraceFlags.SAMPLED,
    };
    const record: RecordedSpan = {
      name,
      traceId: spanContext.traceId,
      spanId: spanContext.spanId,
      parentSpanId: valid ? parent.spanId : undefined,
      attributes: { ...options.attributes },
      status: undefined,
      ended: false,
    };
    this.spans.push(record);
    return new RecordingSpan(spanContext, record);
  }

  startActiveSpan<F extends (span: Span) => unknown>(
    name: string,
    ...args: unknown[]
  ): ReturnType<F> {
    const fn = args.at(-1) as F;
    const options = (args.length >= 2 ? args[0] : {}) as SpanOptions;
    const ctx = (args.length >= 3 ? args[1] : contextApi.active()) as Context;
    const span = this.startSpan(name, options, ctx);
    return contextApi.with(trace.setSpan(ctx, span), () => fn(span)) as ReturnType<F>;
  }
}

/** Registers a recording provider globally; the spans array fills as spans start. */
export function recordSpans(): RecordedSpan[] {
  const spans: RecordedSpan[] = [];
  const provider: TracerProvider = { getTracer: () => new RecordingTracer(spans) };
  trace.setGlobalTracerProvider(provider);
  return spans;
}
