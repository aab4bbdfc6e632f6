/**
 * 405 for a method a known path does not have: answered in the API's error shape with an
 * `Allow` header, before any body is read (the router would answer 404, or the body parser 400).
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { ApiError } from "./contract/errors.js";

export interface PathMethods {
  /** OpenAPI style path (`{xid}`). */
  readonly path: string;
  readonly methods: readonly string[];
}

/** An onRequest hook: 405 when the path is known and the method is not one of its own. */
export function methodNotAllowedHook(paths: readonly PathMethods[]) {
  const table = group(paths).map(({ path, methods }) => ({
    pattern: new RegExp(`^${path.replace(/\{[A-Za-z0-9_]+\}/g, "[^/]+")}$`),
    methods,
    // GET routes answer HEAD too (the router adds it).
    allowed: new Set(methods.flatMap((m) => (m === "GET" ? ["GET", "HEAD"] : [m]))),
  }));
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    // A route matched: its method is one of the path's.
    if (req.routeOptions.url !== undefined) return;
    const path = req.url.split("?", 1)[0] ?? "";
    const known = table.find((t) => t.pattern.test(path));
    if (!known || known.allowed.has(req.method)) return;
    const allow = known.methods.join(", ");
    const err = new ApiError("method-not-allowed", `${req.method} ${path}: use ${allow}`, {
      allow: known.methods,
    });
    await reply.code(err.status).header("allow", allow).send(err.toBody());
  };
}

function group(paths: readonly PathMethods[]): PathMethods[] {
  const byPath = new Map<string, string[]>();
  for (const { path, methods } of paths)
    byPath.set(path, [...(byPath.get(path) ?? []), ...methods]);
  return [...byPath].map(([path, methods]) => ({ path, methods: [...new Set(methods)] }));
}
