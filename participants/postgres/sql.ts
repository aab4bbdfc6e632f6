/**
 * The one way this participant sends SQL: the extended protocol (Parse/Bind/Execute),
 * even without parameters, so the server rejects a string holding several commands,
 * and always with a client-side read timeout, so a silent server cannot hang a caller.
 */
import pg from "pg";
import type { PostgresParam } from "./payload.js";

/** Added to a server-side statement_timeout for the client-side bound: the server should answer first. */
export const clientTimeoutGraceMs = 1_000;

/** The fields of pg's Query that `client.query` reads and @types/pg does not declare. */
type SubmittedQuery = pg.Query & {
  queryMode: "extended";
  query_timeout: number;
  callback: (err: Error | undefined, result: pg.QueryResult) => void;
};

export function query<R extends pg.QueryResultRow = pg.QueryResultRow>(
  client: pg.ClientBase,
  text: string,
  values: readonly (PostgresParam | readonly string[])[],
  timeoutMs: number,
): Promise<pg.QueryResult<R>> {
  // A Query built from the text, its fields set after: from a config object, pg (≥ 8.23)
  // copies the object through its property descriptors, a slow object costing about 5 µs of
  // CPU per query, 26 queries per two-branch transfer (docs/bench.md). Same fields, same
  // protocol: Parse/Bind/Execute whatever the values, the same client-side read timeout.
  const submitted = new pg.Query(text, [...values]) as SubmittedQuery;
  submitted.queryMode = "extended";
  submitted.query_timeout = Math.max(1, Math.ceil(timeoutMs)); // 0 would mean "no timeout"
  return new Promise((resolve, reject) => {
    submitted.callback = (err, result) =>
      err ? reject(err) : resolve(result as pg.QueryResult<R>);
    client.query(submitted);
  });
}

/** What `inOneWrite` reaches: pg's connection and its socket (not in @types/pg). */
interface Corkable {
  readonly connection?: { readonly stream?: { cork?(): void; uncork?(): void } };
}

/**
 * Runs `send`, which only queues queries on a pipelining client, with the socket corked:
 * the queries leave in one write (one system call) instead of one each.
 */
export function inOneWrite<T>(client: pg.ClientBase, send: () => T): T {
  const stream = (client as unknown as Corkable).connection?.stream;
  stream?.cork?.();
  try {
    return send();
  } finally {
    stream?.uncork?.();
  }
}
