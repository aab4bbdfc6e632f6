/**
 * The one way this participant sends SQL: the extended protocol (Parse/Bind/Execute),
 * even without parameters, so the server rejects a string holding several commands,
 * and always with a client-side read timeout, so a silent server cannot hang a caller.
 */
import type pg from "pg";
import type { PostgresParam } from "./payload.js";

/** Added to a server-side statement_timeout for the client-side bound: the server should answer first. */
export const clientTimeoutGraceMs = 1_000;

export function query<R extends pg.QueryResultRow = pg.QueryResultRow>(
  client: pg.ClientBase,
  text: string,
  values: readonly (PostgresParam | readonly string[])[],
  timeoutMs: number,
): Promise<pg.QueryResult<R>> {
  // `queryMode` and a per-query `query_timeout` are supported by pg 8 but absent from @types/pg.
  const config: pg.QueryConfig & { queryMode: "extended"; query_timeout: number } = {
    text,
    values: [...values],
    queryMode: "extended",
    query_timeout: Math.max(1, Math.ceil(timeoutMs)), // 0 would mean "no timeout"
  };
  return client.query<R>(config);
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
