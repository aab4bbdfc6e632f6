/**
 * A standby's one hop to the leader (docs/etcd.md, "Routing"). The call goes as it came, with
 * the term it targets: the original Authorization (the leader verifies it again), the
 * Idempotency-Key and the trace context. A leader that no longer holds that term answers
 * 503 not-leader, and so does this node when the leader cannot be reached: the proxy never
 * retries (the client does, with its Idempotency-Key), and never forwards a forwarded call.
 */
import type { FastifyReply, FastifyRequest } from "fastify";

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
const FORWARDED_REPLY_HEADERS = ["content-type", "retry-after", "allow"] as const;

export async function forwardCall(
  req: FastifyRequest,
  reply: FastifyReply,
  leader: { readonly url: string; readonly term: number },
): Promise<void> {
  const headers: Record<string, string> = { [TARGET_TERM_HEADER]: String(leader.term) };
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = req.headers[name];
    if (typeof value === "string") headers[name] = value;
  }
  // The client hanging up ends the hop too.
  const abort = new AbortController();
  reply.raw.on("close", () => abort.abort());
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const init: RequestInit & { duplex?: "half" } = {
    method: req.method,
    headers,
    signal: abort.signal,
    redirect: "manual",
  };
  // The body streams through unparsed: the leader applies its own limits to it.
  if (hasBody) Object.assign(init, { body: req.raw, duplex: "half" });
  const res = await fetch(new URL(req.url, leader.url), init);
  const body = Buffer.from(await res.arrayBuffer());
  for (const name of FORWARDED_REPLY_HEADERS) {
    const value = res.headers.get(name);
    if (value !== null) void reply.header(name, value);
  }
  await reply.code(res.status).send(body);
}
