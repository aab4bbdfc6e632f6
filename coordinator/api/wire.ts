/**
 * What the API does with bytes before any route sees them: JSON bodies must be valid UTF-8
 * (refused, not repaired with U+FFFD) and nest at most `jsonDepthMax` deep, and requests Node itself refuses (431 header fields too
 * large, a malformed request line) answer in the API's one error shape too.
 */
import type { Socket } from "node:net";
import { STATUS_CODES } from "node:http";
import type { FastifyRequest } from "fastify";
import { ApiError } from "./contract/errors.js";
import { jsonDepthOver } from "./http-guards.js";

export type StringParser = (
  req: FastifyRequest,
  body: string,
  done: (e: Error | null, v?: unknown) => void,
) => void;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A buffer body parser: decodes strictly, then hands the text to fastify's own JSON parser
 * (which refuses `__proto__` and `constructor` poisoning).
 */
export function parseJsonBody(
  parseText: StringParser,
  jsonDepthMax: number,
): (req: FastifyRequest, body: Buffer, done: (e: Error | null, v?: unknown) => void) => void {
  return (req, body, done) => {
    let text: string;
    try {
      text = strictUtf8.decode(body);
    } catch {
      return done(new ApiError("invalid-utf8", "the body is not valid UTF-8"));
    }
    if (jsonDepthOver(text, jsonDepthMax)) {
      return done(
        new ApiError("json-too-deep", `the body nests deeper than ${jsonDepthMax} levels`, {
          limit: "jsonDepthMax",
          max: jsonDepthMax,
        }),
      );
    }
    parseText(req, text, done);
  };
}

/** Fastify's `clientErrorHandler`: the error shape on the raw socket, then close it. */
export function writeClientError(err: Error & { code?: string }, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const apiError =
    err.code === "HPE_HEADER_OVERFLOW"
      ? new ApiError("headers-too-large", "the request's header fields are too large")
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? new ApiError("request-timeout", "the request did not arrive within the node's bounds")
        : new ApiError("bad-request", "malformed HTTP request");
  const body = JSON.stringify(apiError.toBody());
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${apiError.status} ${STATUS_CODES[apiError.status] ?? ""}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Connection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}
