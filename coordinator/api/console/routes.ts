/**
 * The web console (docs/console.md): its static files under `/console`, served with a strict
 * Content-Security-Policy (scripts and styles from this origin only, no inline code, Trusted
 * Types required so no string can become markup), and the admin event stream it listens to.
 * The console authenticates every call with the admin token it was given (a bearer header,
 * never a cookie), so these files need no token and hold no data.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest, RawServerDefault } from "fastify";
import type { Logger } from "pino";
import { ApiError } from "../contract/errors.js";
import { loadConsoleAssets } from "./assets.js";
import { EventHub } from "./events.js";

export const consoleCsp = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join("; ");

/** Event streams open at once (each holds a socket). Documented in docs/configuration.md. */
export const eventSubscribersMax = 32;
const eventPollMs = 250;
const eventHeartbeatMs = 15_000;

export interface ConsoleDeps {
  /** Throws the API's error unless the request carries an admin token. */
  readonly requireAdmin: (req: FastifyRequest) => void;
  readonly appliedIndex: () => number;
  readonly nowMs: () => number;
}

/** The API server's instance (its logger is pino's). */
type App = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, Logger>;

export function registerConsole(app: App, deps: ConsoleDeps): void {
  const assets = loadConsoleAssets();
  const serve = (name: string, reply: FastifyReply) => {
    if (!assets) {
      throw new ApiError("not-found", "the console's files (console/) are not installed here");
    }
    const asset = assets.get(name);
    if (!asset) throw new ApiError("not-found", `no console file ${name}`);
    return reply
      .header("content-type", asset.contentType)
      .header("content-security-policy", consoleCsp)
      .header("x-content-type-options", "nosniff")
      .header("referrer-policy", "no-referrer")
      .header("cache-control", "no-cache")
      .send(asset.body);
  };
  app.get("/console", (_req, reply) => serve("index.html", reply));
  app.get<{ Params: { file: string } }>("/console/:file", (req, reply) =>
    serve(req.params.file, reply),
  );

  const hub = new EventHub({
    subscribersMax: eventSubscribersMax,
    pollMs: eventPollMs,
    heartbeatMs: eventHeartbeatMs,
    appliedIndex: deps.appliedIndex,
    nowMs: deps.nowMs,
  });
  app.addHook("preClose", (done) => {
    hub.closeAll();
    done();
  });
  app.get("/admin/v1/events", (req, reply) => {
    deps.requireAdmin(req);
    if (!hub.hasRoom()) {
      throw new ApiError("rate-limited", `${eventSubscribersMax} event streams are open`, {
        limit: "eventSubscribersMax",
        retryAfterS: 5,
      });
    }
    reply.hijack();
    reply.raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    });
    hub.subscribe(reply.raw);
  });
}
