/**
 * Every error the PostgreSQL participant throws on purpose. Each carries the participant
 * name, the branch it concerns (if any) and whether retrying the same call can help.
 * Expected negative outcomes of `prepare` (a failed statement, an unmet expectation) are
 * no-votes, not errors; `commit`/`rollback` throw only the retryable errors below.
 */
import {
  hasSystemErrorCode,
  ParticipantError,
  type ParticipantErrorIds,
} from "../common/errors.js";

export type PostgresErrorIds = ParticipantErrorIds;

export abstract class PostgresParticipantError extends ParticipantError {}

/**
 * The server could not be reached or did not answer in time (connection refused or
 * reset, pool or query timeout, server shutting down). Never a heuristic outcome: the
 * caller retries with backoff.
 */
export class ParticipantUnavailableError extends PostgresParticipantError {
  readonly code = "participant-unavailable";
  readonly retryable = true;
}

/**
 * The server answered a phase-2 call with an error that is neither "does not exist" nor
 * transient (e.g. 42501: the role may not finish this prepared transaction, 55000: another
 * session is finishing it right now). Retryable: an operator can fix the cause, and the
 * decision must still be carried out (G3).
 */
export class Phase2ServerError extends PostgresParticipantError {
  readonly code = "phase2-server-error";
  readonly retryable = true;
  readonly sqlState: string;

  constructor(message: string, ids: PostgresErrorIds, sqlState: string, cause: unknown) {
    super(message, ids, { cause });
    this.sqlState = sqlState;
  }
}

/** `start` found a server setting or privilege that makes two-phase commit unsafe or impossible. */
export class UnsafeServerError extends PostgresParticipantError {
  readonly code = "unsafe-server";
  readonly retryable = false;
}

/** `start` found the database registered to another Verdict cluster (G6). */
export class ClusterMismatchError extends PostgresParticipantError {
  readonly code = "cluster-mismatch";
  readonly retryable = false;
  readonly registeredClusterId: string;
  readonly clusterId: string;

  constructor(ids: PostgresErrorIds, clusterId: string, registeredClusterId: string) {
    super(
      `participant ${ids.participant}: this database (schema registry) belongs to Verdict cluster ` +
        `"${registeredClusterId}", not "${clusterId}"; two clusters never share a database's ` +
        `branches. Point this cluster at another database or marker schema, or unregister the ` +
        `old cluster once it has no prepared branches left.`,
      ids,
    );
    this.clusterId = clusterId;
    this.registeredClusterId = registeredClusterId;
  }
}

/** A configuration value is invalid (thrown by `parsePostgresParticipantConfig`). */
export class PostgresConfigError extends PostgresParticipantError {
  readonly code = "invalid-config";
  readonly retryable = false;
}

/** A call came before `start` or after `close`: a programming error in the caller. */
export class ParticipantNotStartedError extends PostgresParticipantError {
  readonly code = "not-started";
  readonly retryable = false;
}

/**
 * SQLSTATE of a server error, if `err` is one. No SQLSTATE class starts with E, while a
 * socket error's code does (EPIPE is five capitals too: a write into a cut connection).
 */
export function sqlStateOf(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && /^[0-9A-DF-Z][0-9A-Z]{4}$/.test(code) ? code : undefined;
}

const transientSqlStates = new Set([
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "57014", // query_canceled (statement_timeout)
  "53300", // too_many_connections
  "53000", // insufficient_resources
  "53100", // disk_full
  "53200", // out_of_memory
  "58000", // system_error
  "58030", // io_error
]);

const transientMessages = [
  "Connection terminated",
  "timeout exceeded when trying to connect",
  "Query read timeout",
  "Client has encountered a connection error",
  "Client was closed",
];

/**
 * True when `err` says nothing about the branch, only that the server was unreachable,
 * too busy or too slow: a retry may succeed.
 */
export function isTransient(err: unknown): boolean {
  const sqlState = sqlStateOf(err);
  if (sqlState !== undefined) return sqlState.startsWith("08") || transientSqlStates.has(sqlState);
  if (!(err instanceof Error)) return false;
  if (hasSystemErrorCode(err)) return true;
  return transientMessages.some((m) => err.message.includes(m));
}
