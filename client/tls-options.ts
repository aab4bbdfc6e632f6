/**
 * `ClientTls` as node:https options, for the pool's agent and an event stream's request. Apart
 * from http.ts so that no declaration the package exports names node's types: a consumer
 * without @types/node still type-checks (test/integration/client/package.test.ts).
 */
import type https from "node:https";
import type { ClientTls } from "./http.js";

type NodeTls = Pick<https.AgentOptions, "ca" | "cert" | "key">;

export function tlsOptions(tls: ClientTls = {}): NodeTls {
  // Buffers are Uint8Arrays, and node's TLS takes any Uint8Array for these fields.
  return {
    ...(tls.ca === undefined ? {} : { ca: tls.ca as NodeTls["ca"] }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert as NodeTls["cert"] }),
    ...(tls.key === undefined ? {} : { key: tls.key as NodeTls["key"] }),
  };
}
