/**
 * The SDK's HTTP transport: node:http(s) over a keep-alive agent per client, so the calls of
 * a transaction reuse pooled connections instead of opening one each, and nothing heavier
 * than one timer is set up per call (global fetch built a Request, Headers, a stream and an
 * AbortSignal per call, and cost more CPU than the rest of the SDK together: docs/bench.md).
 * No dependency: node:http is enough for one JSON request and its JSON answer.
 */
import http from "node:http";
import https from "node:https";
import { exchange } from "./exchange.js";
import { tlsOptions } from "./tls-options.js";

export interface HttpAnswer {
  readonly status: number;
  /** The parsed JSON body; undefined when empty or not JSON. */
  readonly body: unknown;
}

/** Free connections idle longer than this are closed: under the server's own keep-alive timeout. */
const idleSocketMs = 4_000;
/** An answer body larger than this is cut off and the call fails (answers are small JSON). */
const answerBytesMax = 16 * 1024 * 1024;

/**
 * TLS towards `https:` nodes, as PEM text or bytes (e.g. `readFileSync(path)`); without it the
 * system's CAs verify the node and no client certificate is sent (docs/tls.md).
 */
export interface ClientTls {
  /** The CA (or CAs) that signed the nodes' certificates, instead of the system's. */
  readonly ca?: string | Uint8Array | readonly (string | Uint8Array)[];
  /** A client certificate and its key, for nodes with `clientCertificate: require`. */
  readonly cert?: string | Uint8Array;
  readonly key?: string | Uint8Array;
}

export class HttpTransport {
  private readonly plain: http.Agent;
  private readonly secure: https.Agent;

  /**
   * `connectionsMax`: open connections per node; calls beyond it wait in the agent for one.
   * `tls` applies to every `https:` connection of the pool.
   */
  constructor(connectionsMax: number, tls: ClientTls = {}) {
    const options = {
      keepAlive: true,
      maxSockets: connectionsMax,
      maxFreeSockets: connectionsMax,
      timeout: idleSocketMs,
      scheduling: "lifo" as const,
    };
    this.plain = new http.Agent(options);
    this.secure = new https.Agent({ ...options, ...tlsOptions(tls) });
  }

  /** One request; rejects on a connection failure, a timeout or an oversized answer. */
  async request(
    method: string,
    url: string,
    headers: Record<string, string>,
    body: string | undefined,
    timeoutMs: number,
  ): Promise<HttpAnswer> {
    const target = new URL(url);
    const agent = target.protocol === "https:" ? this.secure : this.plain;
    if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));
    const { status, text } = await exchange(
      target,
      { method, headers, agent },
      body,
      timeoutMs,
      answerBytesMax,
    );
    return { status, body: parseJson(text) };
  }

  /** Closes the pooled connections; calls after it open new ones. */
  close(): void {
    this.plain.destroy();
    this.secure.destroy();
  }
}

function parseJson(text: string): unknown {
  try {
    return text === "" ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}
