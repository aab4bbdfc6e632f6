/**
 * A raw reader of the node's Server-Sent Events streams for the tests: fetch, the body read
 * as it arrives and cut into events here (independent of the SDK's parser), with the time
 * each event and the end arrived.
 */
export interface StreamEvent {
  readonly event: string;
  readonly data: unknown;
  readonly atMs: number;
}

export interface OpenStream {
  readonly status: number;
  readonly contentType: string | null;
  /** The refusal's JSON body (status other than 200). */
  readonly body: unknown;
  /** Events so far (grows while the stream is open). */
  readonly events: StreamEvent[];
  /** Heartbeat comments so far. */
  readonly comments: () => number;
  /** Resolves with the time the server ended the stream; rejects if it is open after `boundMs`. */
  readonly ended: Promise<number>;
  close(): void;
}

export async function openStream(
  url: string,
  path: string,
  token: string,
  boundMs = 20_000,
): Promise<OpenStream> {
  const abort = new AbortController();
  let timedOut = false;
  const bound = setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, boundMs);
  const res = await fetch(url + path, {
    headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" },
    signal: abort.signal,
  });
  const events: StreamEvent[] = [];
  let comments = 0;
  if (res.status !== 200) {
    clearTimeout(bound);
    const text = await res.text();
    return {
      status: res.status,
      contentType: res.headers.get("content-type"),
      body: text === "" ? undefined : (JSON.parse(text) as unknown),
      events,
      comments: () => 0,
      ended: Promise.resolve(Date.now()),
      close: () => abort.abort(),
    };
  }
  const read = async (): Promise<number> => {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf("\n\n")) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith(":")) {
            comments++;
            continue;
          }
          const name = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
          const data = /^data: (.*)$/m.exec(block)?.[1] ?? "null";
          events.push({ event: name, data: JSON.parse(data) as unknown, atMs: Date.now() });
        }
      }
    } catch {
      // Closed by this side (close(), or the bound): the end is now.
    } finally {
      clearTimeout(bound);
    }
    if (timedOut) throw new Error(`${path}: the stream was still open after ${boundMs} ms`);
    return Date.now();
  };
  return {
    status: 200,
    contentType: res.headers.get("content-type"),
    body: undefined,
    events,
    comments: () => comments,
    ended: read(),
    close: () => abort.abort(),
  };
}

/** The `state` values of a transaction stream's events, in order. */
export function statesOf(s: OpenStream): string[] {
  return s.events.map((e) => (e.data as { state: string }).state);
}
