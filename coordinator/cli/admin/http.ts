/**
 * One admin request with Node's fetch: a bearer token, a timeout on the whole exchange, a
 * bound on the answer's size, and the API's error body turned into a CliError whose exit
 * code says who is at fault (4xx refused → 1; unreachable, timeout, 5xx → 3).
 */
import { CliError, exitCodes } from "../errors.js";

/** Above the largest admin answer (a full list page, a transaction with its whole history). */
export const responseBytesMax = 64 * 1024 * 1024;

export interface AdminTarget {
  readonly url: string;
  readonly token: string;
  readonly timeoutMs: number;
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
  const url = new URL(path, target.url).toString();
  const headers: Record<string, string> = {
    authorization: `Bearer ${target.token}`,
    accept: "application/json",
  };
  if (body !== undefined) headers["content-type"] = "application/json";
  // One signal for connect, headers and body: a stalled body fails as surely as a dead host.
  const signal = AbortSignal.timeout(target.timeoutMs);
  let text: string;
  let status: number;
  try {
    const response = await fetch(url, {
      method,
      headers,
      signal,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    status = response.status;
    text = await readBounded(response, responseBytesMax);
  } catch (error) {
    if (error instanceof CliError) throw error;
    const why = signal.aborted ? `no answer within ${target.timeoutMs} ms` : causeText(error);
    throw new CliError(exitCodes.unavailable, `cannot reach ${url}: ${why}`, { cause: error });
  }
  const parsed = parseJson(text);
  if (status >= 200 && status < 300) {
    if (parsed === undefined)
      throw new CliError(exitCodes.unavailable, `${url} answered ${status} without JSON`);
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

async function readBounded(response: Response, bytesMax: number): Promise<string> {
  const reader = (response.body as ReadableStream<Uint8Array> | null)?.getReader();
  if (reader === undefined) return "";
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > bytesMax) {
      await reader.cancel();
      throw new CliError(exitCodes.unavailable, `answer over ${bytesMax} bytes: refused`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function parseJson(text: string): unknown {
  try {
    return text === "" ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}

/** fetch wraps the socket error ("fetch failed"); its cause says what happened. */
function causeText(error: unknown): string {
  const cause = error instanceof Error ? (error.cause ?? error) : error;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code ? `${code} ${cause.message}` : cause.message;
  }
  return String(cause);
}
