/**
 * Bounds on what a client can hold of the node before any route runs (docs/security.md, "API
 * abuse resistance"): how long it may take to send headers and a body, how long an idle
 * keep-alive connection stays, how many connections one address and everyone together may
 * hold, and how deeply a JSON body may nest.
 */
import { createServer, type RequestListener, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Socket } from "node:net";
import { refuseUnverifiedCertificates, serverTlsOptions, type ListenerTls } from "./tls.js";

export interface HttpBounds {
  /** All header fields must arrive within this (slow-header clients are cut: 408). */
  readonly headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this (slow-body clients: 408). */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  readonly keepAliveTimeoutMs: number;
  /** Connections one client address may hold at once; more are closed on arrival. */
  readonly connectionsPerAddressMax: number;
  /** Connections the listener holds at once. */
  readonly connectionsMax: number;
}

/**
 * The HTTP server Fastify runs on (its `serverFactory`). Node checks the header and request
 * timeouts every `connectionsCheckingInterval`: a second here, not its 30 s default, so a
 * slow client is cut within about a second of its bound. With `tls`, the same server over TLS.
 */
export function boundedServer(
  bounds: HttpBounds,
  handler: RequestListener,
  tls?: ListenerTls,
): Server {
  const options = {
    headersTimeout: bounds.headersTimeoutMs,
    requestTimeout: bounds.requestTimeoutMs,
    keepAliveTimeout: bounds.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, bounds.headersTimeoutMs),
  };
  let server: Server;
  if (tls === undefined) server = createServer(options, handler);
  else {
    // A client stalling its handshake is cut like one stalling its headers.
    const handshakeTimeout = bounds.headersTimeoutMs;
    const secure = createHttpsServer(
      { ...options, handshakeTimeout, ...serverTlsOptions(tls) },
      handler,
    );
    if (tls.clientCertificate === "request") refuseUnverifiedCertificates(secure);
    // An https.Server is Node's http.Server over TLS (Fastify serves its own https the same way).
    server = secure;
  }
  server.maxConnections = bounds.connectionsMax;
  limitPerAddress(server, bounds.connectionsPerAddressMax);
  return server;
}

function limitPerAddress(server: Server, perAddressMax: number): void {
  const held = new Map<string, number>();
  server.on("connection", (socket: Socket) => {
    const address = socket.remoteAddress ?? "";
    const n = held.get(address) ?? 0;
    if (n >= perAddressMax) {
      socket.destroy();
      return;
    }
    held.set(address, n + 1);
    socket.once("close", () => {
      const left = (held.get(address) ?? 1) - 1;
      if (left === 0) held.delete(address);
      else held.set(address, left);
    });
  });
}

/**
 * How deeply `text` (JSON) nests arrays and objects, stopping as soon as it passes `max`:
 * one pass over the characters, no recursion, strings skipped.
 */
export function jsonDepthOver(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}
