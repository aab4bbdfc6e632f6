/**
 * One HTTP exchange over node:http(s) with a single timer for connect, headers and body (a
 * stalled body fails as surely as a dead host) and a bound on the answer's size. The SDK's
 * transport and the admin CLI both send their requests through it.
 */
import http from "node:http";
import https from "node:https";

export interface Exchanged {
  readonly status: number;
  /** The body as text (UTF-8). */
  readonly text: string;
}

/** Rejects on a connection failure, a timeout, an early close or an answer over `bytesMax`. */
export function exchange(
  url: URL,
  options: https.RequestOptions,
  body: string | undefined,
  timeoutMs: number,
  bytesMax: number,
): Promise<Exchanged> {
  const send = url.protocol === "https:" ? https.request : http.request;
  return new Promise<Exchanged>((resolve, reject) => {
    const req = send(url, options);
    const timer = setTimeout(() => {
      req.destroy(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    req.once("error", fail);
    req.once("response", (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > bytesMax) {
          req.destroy(new Error(`answer larger than ${bytesMax} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.once("error", fail);
      res.once("close", () => {
        if (!res.complete) fail(new Error("the connection closed before the answer ended"));
      });
      res.once("end", () => {
        clearTimeout(timer);
        const text =
          chunks.length === 1
            ? chunks[0]!.toString("utf8")
            : Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode ?? 0, text });
      });
    });
    req.end(body);
  });
}
