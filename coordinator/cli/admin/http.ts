/**
 * One admin request over node:http(s): a bearer token, a timeout on the whole exchange, a
 * bound on the answer's size, and the API's error body turned into a CliError whose exit
 * code says who is at fault (4xx refused → 1; unreachable, timeout, 5xx → 3). For `https:`
 * nodes, an optional CA and client certificate (docs/tls.md).
 */
import { exchange } from "../../../client/exchange.js";
import { CliError, exitCodes } from "../errors.js";

/** Above the largest admin answer (a full list page, a transaction with its whole history). */
export const responseBytesMax = 64 * 1024 * 1024;

export interface AdminTarget {
  readonly url: string;
  readonly token: string;
  readonly timeoutMs: number;
  /** PEM contents: the CA that signed the node's certificate, a client certificate and key. */
  readonly tls?: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
}

export interface AdminAnswer {
  /** The body as the server sent it (what `--json` prints). */
  readonly text: string;
  readonly body: unknown;
}

export async function adminRequest(
  target: AdminTarget,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
): Promise<AdminAnswer> {
  const url = new URL(path, target.url);
  const headers: Record<string, string> = {
    authorization: `Bearer ${target.token}`,
    accept: "application/json",
  };
  const payload = body === undefined ? undefined : JSON.stringify(body);
  if (payload !== undefined) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(Buffer.byteLength(payload));
  }
  let answer: { status: number; text: string };
  try {
    answer = await exchange(
      url,
      { method, headers, ...target.tls },
      payload,
      target.timeoutMs,
      responseBytesMax,
    );
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(exitCodes.unavailable, `cannot reach ${url.href}: ${causeText(error)}`, {
      cause: error,
    });
  }
  const { status, text } = answer;
  const parsed = parseJson(text);
  if (status >= 200 && status < 300) {
    if (parsed === undefined)
      throw new CliError(exitCodes.unavailable, `${url.href} answered ${status} without JSON`);
    return { text, body: parsed };
  }
  throw new CliError(
    status >= 400 && status < 500 ? exitCodes.refused : exitCodes.unavailable,
    errorLine(status, parsed, text),
  );
}

/** `error <code>: <message>`, plus where to go when the node is not the leader. */
function errorLine(status: number, body: unknown, text: string): string {
  const error = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } })
    ?.error;
  if (typeof error?.code !== "string" || typeof error.message !== "string") {
    return `error http-${status}: ${text.slice(0, 300) || "(empty body)"}`;
  }
  const details = error.details as { leaderUrl?: unknown } | undefined;
  const leader =
    typeof details?.leaderUrl === "string" ? ` (leader: ${details.leaderUrl}; use --url)` : "";
  return `error ${error.code}: ${error.message}${leader}`;
}

function parseJson(text: string): unknown {
  try {
    return text === "" ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}

/** The socket or TLS error's code and message (a certificate problem names itself). */
function causeText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code ? `${code} ${error.message}` : error.message;
  }
  return String(error);
}
