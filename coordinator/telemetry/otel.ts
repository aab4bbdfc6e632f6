/**
 * The OpenTelemetry SDK, when an operator asks for traces (config `tracing.otlpEndpoint` or
 * the standard `OTEL_*` variables): spans are batched and sent over OTLP/HTTP. The context
 * manager, which carries the caller's `traceparent` through every await of a request, is
 * registered when spans are recorded: exported here, or a provider the operator registered
 * before the node started (docs/observability.md). Otherwise no span is made (tracing.ts),
 * and the manager's hook on every promise would cost CPU for nothing.
 */
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import type { TracingConfig } from "../config/schema.js";
import { spansRecorded } from "./tracing.js";

export interface Tracing {
  /** Where spans go, or undefined when none are exported. */
  readonly endpoint: string | undefined;
  /** Sends what is batched, then stops exporting. */
  shutdown(): Promise<void>;
}

let contextManager: AsyncLocalStorageContextManager | undefined;

/** The traces endpoint the configuration or the environment names, if any. */
export function otlpTracesEndpoint(
  config: TracingConfig,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (env.OTEL_SDK_DISABLED === "true" || env.OTEL_TRACES_EXPORTER === "none") return undefined;
  if (config.otlpEndpoint !== undefined) return config.otlpEndpoint;
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return base ? `${base.replace(/\/+$/, "")}/v1/traces` : undefined;
}

export function startTracing(config: TracingConfig, nodeId: string): Tracing {
  const endpoint = otlpTracesEndpoint(config);
  if (endpoint === undefined && !spansRecorded()) {
    return { endpoint, shutdown: () => Promise.resolve() };
  }
  if (contextManager === undefined) {
    contextManager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(contextManager);
  }
  if (endpoint === undefined) return { endpoint, shutdown: () => Promise.resolve() };
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      "service.name": process.env.OTEL_SERVICE_NAME ?? config.serviceName,
      "service.instance.id": nodeId,
    }),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter({ url: endpoint }),
        scheduledDelayMillis: config.exportDelayMs,
        // A slow collector costs dropped spans, never memory or latency of the protocol.
        maxQueueSize: 4096,
      }),
    ],
  });
  trace.setGlobalTracerProvider(provider);
  return {
    endpoint,
    shutdown: async () => {
      await provider.shutdown();
      trace.disable();
    },
  };
}
