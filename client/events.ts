/**
 * Server-Sent Events over node:http(s), for `VerdictClient.outcome`: a small parser of the
 * `text/event-stream` format (event and data fields, comments skipped, CRLF or LF lines) and
 * one bounded stream request. No dependency: the format is a few lines.
 */
import http from "node:http";
import https from "node:https";
import type { ClientTls } from "./http.js";
import { tlsOptions } from "./tls-options.js";

export interface SseEvent {
  readonly event: string;
  readonly data: string;
}

/** Characters one event may take before the stream is given up (events are one transaction view). */
export const eventCharsMax = 16 * 1024 * 1024;
/** Characters of a refusal's body (an API error, a few hundred bytes). */
const refusalCharsMax = 64 * 1024;

/** Cuts a stream's text into events as it arrives; bounded by `eventCharsMax`. */
export class SseParser {
  private buffer = "";

  /** The events `chunk` completes; throws when an event grows over the bound. */
  push(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const events: SseEvent[] = [];
    for (;;) {
      const end = /\r\n\r\n|\n\n|\r\r/.exec(this.buffer);
      if (end === null) break;
      const block = this.buffer.slice(0, end.index);
      this.buffer = this.buffer.slice(end.index + end[0].length);
      const event = parseBlock(block);
      if (event !== undefined) events.push(event);
    }
    if (this.buffer.length > eventCharsMax) {
      throw new Error(`an event longer than ${eventCharsMax} characters`);
    }
    return events;
  }
}

function parseBlock(block: string): SseEvent | undefined {
  let event = "message";
  const data: string[] = [];
  for (const line of block.split(/\r\n|\n|\r/)) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length === 0 ? undefined : { event, data: data.join("\n") };
}

/** How one stream went. */
export type StreamEnd =
  /** `onEvent` returned true: the caller has what it waited for (the request is closed). */
  | { readonly kind: "done" }
  /** The server ended the stream (or it broke, or went quiet) before that. */
  | { readonly kind: "ended" }
  /** The server refused the stream: its status and JSON body. */
  | { readonly kind: "refused"; readonly status: number; readonly body: unknown };

export interface StreamRequest {
  readonly url: string;
  readonly headers: Record<string, string>;
  /** The whole stream's bound: it is closed after this. */
  readonly timeoutMs: number;
  /** A stream silent for this long is given up (the server's heartbeat comes every 15 s). */
  readonly idleMs: number;
  /** Called with each event; true ends the stream. */
  readonly onEvent: (event: SseEvent) => boolean;
  /** The client's TLS options, for an `https:` URL (as the pooled transport has them). */
  readonly tls?: ClientTls;
}

/** Opens one event stream; rejects only when no answer came (connection failed, timed out). */
export function readEventStream(r: StreamRequest): Promise<StreamEnd> {
  const target = new URL(r.url);
  const send = target.protocol === "https:" ? https.request : http.request;
  return new Promise<StreamEnd>((resolve, reject) => {
    // Its own connection, outside the client's pool: a stream holds it for long.
    const req = send(target, {
      method: "GET",
      headers: { ...r.headers, accept: "text/event-stream" },
      agent: false,
      ...tlsOptions(r.tls),
    });
    let answered = false;
    const finish = (end: StreamEnd) => {
      clearTimeout(timer);
      resolve(end);
      req.destroy();
    };
    const timer = setTimeout(() => {
      req.destroy(new Error(`the stream did not end within ${r.timeoutMs} ms`));
    }, r.timeoutMs);
    req.setTimeout(r.idleMs, () => req.destroy(new Error(`the stream was silent ${r.idleMs} ms`)));
    req.once("error", (err) => {
      clearTimeout(timer);
      if (answered) resolve({ kind: "ended" });
      else reject(err);
    });
    req.once("response", (res) => {
      answered = true;
      let refusal = "";
      const streaming = res.statusCode === 200;
      const parser = new SseParser();
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (!streaming) {
          refusal += chunk;
          if (refusal.length > refusalCharsMax) req.destroy(new Error("refusal body too large"));
          return;
        }
        try {
          if (parser.push(chunk).some((e) => r.onEvent(e))) finish({ kind: "done" });
        } catch (err) {
          req.destroy(err as Error);
        }
      });
      res.once("error", () => finish({ kind: "ended" }));
      res.once("end", () => {
        if (streaming) return finish({ kind: "ended" });
        finish({ kind: "refused", status: res.statusCode ?? 0, body: jsonOf(refusal) });
      });
    });
    req.end();
  });
}

function jsonOf(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
