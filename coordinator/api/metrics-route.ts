/**
 * `GET /metrics`: the Prometheus text, rendered at most once per `cacheMs` however many scrape
 * it (a flood of scrapes once slowed every client's calls), and behind a bearer token when
 * one is configured. Served by the API's listener, or by a listener of its own.
 */
import Fastify, { type FastifyReply, type FastifyRequest } from "fastify";
import { bearerOf, matchesDigest, secretDigest } from "./bearer.js";
import { ApiError } from "./contract/errors.js";

export interface MetricsSource {
  /** Renders the text now; counted by the caller's own metric. */
  render(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsRouteOptions {
  readonly source: MetricsSource;
  readonly cacheMs: number;
  /** Scrapers must send `Authorization: Bearer <token>`; absent: anyone may read. */
  readonly token?: string;
  readonly nowMs: () => number;
}

/** One rendering shared by every scrape within `cacheMs` of it, in flight ones included. */
export function cachedRender(
  render: () => Promise<string>,
  cacheMs: number,
  nowMs: () => number,
): () => Promise<string> {
  let last: { atMs: number; text: Promise<string> } | undefined;
  return () => {
    const now = nowMs();
    if (last && now - last.atMs < cacheMs) return last.text;
    const text = render();
    last = { atMs: now, text };
    // A failed rendering is not kept: the next scrape tries again.
    text.catch(() => {
      if (last?.text === text) last = undefined;
    });
    return text;
  };
}

/** The handler of `GET /metrics`. */
export function metricsHandler(
  opts: MetricsRouteOptions,
): (req: FastifyRequest, reply: FastifyReply) => Promise<string> {
  const text = cachedRender(() => opts.source.render(), opts.cacheMs, opts.nowMs);
  const wanted = opts.token === undefined ? undefined : secretDigest(opts.token);
  return async (req, reply) => {
    if (wanted !== undefined) {
      const given = bearerOf(req.headers.authorization);
      if (given === undefined || !matchesDigest(given, wanted)) {
        throw new ApiError("unauthorized", "send Authorization: Bearer <metrics token>");
      }
    }
    void reply.header("content-type", opts.source.contentType);
    return text();
  };
}

/** A listener serving only `/metrics`, so that scrapes can be kept off the API's address. */
export async function listenMetrics(
  opts: MetricsRouteOptions & { readonly host: string; readonly port: number },
): Promise<{ readonly url: string; close(): Promise<void> }> {
  const app = Fastify({ logger: false });
  app.setErrorHandler((err: unknown, _req, reply) =>
    err instanceof ApiError
      ? reply.code(err.status).send(err.toBody())
      : reply.code(500).send(new ApiError("internal", "internal error").toBody()),
  );
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send(new ApiError("not-found", `no route ${req.method} ${req.url}`).toBody()),
  );
  app.get("/metrics", metricsHandler(opts));
  const url = await app.listen({ host: opts.host, port: opts.port });
  return { url, close: () => app.close() };
}
