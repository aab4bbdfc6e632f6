/**
 * The web console (docs/console.md): its static files under `/console`, served with a strict
 * Content-Security-Policy (scripts and styles from this origin only, no inline code, Trusted
 * Types required so no string can become markup). The admin event stream it listens to is a
 * route of the table (api/transaction-events.ts).
 * The console authenticates every call with the admin token it was given (a bearer header,
 * never a cookie), so these files need no token and hold no data.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply, RawServerDefault } from "fastify";
import type { Logger } from "pino";
import { ApiError } from "../contract/errors.js";
import { loadConsoleAssets } from "./assets.js";

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

/** The API server's instance (its logger is pino's). */
type App = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, Logger>;

export function registerConsole(app: App): void {
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
}
