/**
 * A standby's one hop to the leader (docs/etcd.md, "Routing"). The call goes as it came, with
 * the term it targets: the original Authorization (the leader verifies it again), the
 * Idempotency-Key and the trace context. A leader that no longer holds that term answers
 * 503 not-leader, and so does this node when the leader cannot be reached: the proxy never
 * retries (the client does, with its Idempotency-Key), and never forwards a forwarded call.
 *
 * With a forwarding secret the call carries a proof (forward-proof.ts) over its method,
 * path, term, time and body, so the body is read here first (at most the API's body limit).
 * Over HTTPS the leader's certificate is verified against `node.tls.caFile`, and this node
 * presents its own certificate, which a leader in `clientCertificate: require` demands
 * (docs/tls.md).
 */
import { createHash } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { FastifyReply, FastifyRequest } from "fastify";
import { ApiError } from "../api/contract/errors.js";
import type { TlsFiles } from "../api/tls.js";
import { FORWARD_BODY_HEADER, FORWARD_PROOF_HEADER, signForward } from "./forward-proof.js";

/** The term a forwarded call targets; its presence also marks the call as already forwarded. */
export const TARGET_TERM_HEADER = "verdict-target-term";

const FORWARDED_REQUEST_HEADERS = [
  "authorization",
  "idempotency-key",
  "traceparent",
  "tracestate",
  "content-type",
  "accept",
] as const;
/**
 * The longest one hop waits for the leader's answer: longer than any call's own bounds (a
 * commit waits for phase 2, each participant call within 60 s by default), so a black-holed
 * leader holds a standby's socket for a bounded time even if the client never gives up.
 */
export const FORWARD_TIMEOUT_MS = 180_000;
/** The largest answer relayed (a full admin list page is well under it). */
export const FORWARD_ANSWER_BYTES_MAX = 64 * 1024 * 1024;
const FORWARDED_REPLY_HEADERS = ["content-type", "retry-after", "allow"] as const;

export interface ForwarderOptions {
  /** Signs every forwarded call (cluster.forwardSecretFile); absent: calls go unsigned. */
  readonly secret?: Buffer;
  /** The API's body limit: a larger body is refused here, before the hop. */
  readonly bodyBytesMax: number;
  readonly nowMs: () => number;
}

/** Forwards calls to the leader over pooled connections (one pool per scheme). */
export class Forwarder {
  private readonly plain = new http.Agent({ keepAlive: true });
  private secure: https.Agent;

  constructor(
    private readonly o: ForwarderOptions,
    tls: TlsFiles | undefined,
  ) {
    this.secure = secureAgent(tls);
  }

  /** New hops use the re-read files (SIGHUP); hops under way finish on their connection. */
  setTls(tls: TlsFiles | undefined): void {
    this.secure = secureAgent(tls);
  }

  /** Closes the pooled connections to the leader. */
  close(): void {
    this.plain.destroy();
    this.secure.destroy();
  }

  async forward(
    req: FastifyRequest,
    reply: FastifyReply,
    leader: { readonly url: string; readonly term: number },
  ): Promise<void> {
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const body = hasBody ? await readBody(req, this.o.bodyBytesMax) : Buffer.alloc(0);
    const term = String(leader.term);
    const headers: Record<string, string> = {
      [TARGET_TERM_HEADER]: term,
      "content-length": String(body.length),
    };
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = req.headers[name];
      if (typeof value === "string") headers[name] = value;
    }
    if (this.o.secret !== undefined) {
      const bodySha256 = createHash("sha256").update(body).digest("hex");
      const call = { method: req.method, url: req.url, term, bodySha256 };
      headers[FORWARD_BODY_HEADER] = bodySha256;
      headers[FORWARD_PROOF_HEADER] = signForward(this.o.secret, call, this.o.nowMs());
    }
    const target = new URL(req.url, leader.url);
    const answer = await this.send(target, req.method, headers, body, reply);
    for (const name of FORWARDED_REPLY_HEADERS) {
      const value = answer.headers[name];
      if (typeof value === "string") void reply.header(name, value);
    }
    await reply.code(answer.status).send(answer.body);
  }

  private send(
    target: URL,
    method: string,
    headers: Record<string, string>,
    body: Buffer,
    reply: FastifyReply,
  ): Promise<HopAnswer> {
    const secure = target.protocol === "https:";
    return new Promise<HopAnswer>((resolve, reject) => {
      let settled = false;
      const hop = (secure ? https : http).request(target, {
        method,
        headers,
        agent: secure ? this.secure : this.plain,
      });
      const timer = setTimeout(() => {
        hop.destroy(new Error(`no answer within ${FORWARD_TIMEOUT_MS} ms`));
      }, FORWARD_TIMEOUT_MS);
      // The client hanging up ends the hop too.
      const hangUp = () => {
        if (!settled) hop.destroy(new Error("the client went away"));
      };
      reply.raw.once("close", hangUp);
      const done = (err: Error | undefined, answer?: HopAnswer) => {
        settled = true;
        clearTimeout(timer);
        reply.raw.off("close", hangUp);
        if (answer === undefined) reject(err ?? new Error("no answer"));
        else resolve(answer);
      };
      hop.once("error", (err) => done(err));
      hop.once("response", (res) => {
        readBounded(res, FORWARD_ANSWER_BYTES_MAX).then(
          (bytes) =>
            bytes === undefined
              ? done(new Error(`answer over ${FORWARD_ANSWER_BYTES_MAX} bytes`))
              : done(undefined, {
                  status: res.statusCode ?? 502,
                  headers: res.headers,
                  body: bytes,
                }),
          (err: Error) => done(err),
        );
      });
      hop.end(body);
    });
  }
}

interface HopAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

function secureAgent(tls: TlsFiles | undefined): https.Agent {
  // This node's own certificate doubles as its client certificate towards the leader.
  return new https.Agent({ keepAlive: true, ...(tls ?? {}) });
}

/** The request body as bytes, refused (413) past `bytesMax`. */
async function readBody(req: FastifyRequest, bytesMax: number): Promise<Buffer> {
  const body = await readBounded(req.raw, bytesMax);
  if (body === undefined) throw new ApiError("body-too-large", `body over ${bytesMax} bytes`);
  return body;
}

/** Everything `stream` holds, or undefined (and the rest unread) past `bytesMax`. */
async function readBounded(
  stream: NodeJS.ReadableStream,
  bytesMax: number,
): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of stream) {
    const b = chunk as Buffer;
    bytes += b.length;
    if (bytes > bytesMax) return undefined;
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
