/**
 * The participant's connection pools, one per database role (docs/security.md):
 *
 * - bookkeeping: Verdict's own role; markers' verification, tombstones, transaction records,
 *   recovery. Every statement runs under a short lock_timeout and statement_timeout, so
 *   nothing a branch holds can stall it for long.
 * - statement roles: `default` and one per configured principal; they run branch
 *   statements and finish the prepared transactions they own (COMMIT/ROLLBACK PREPARED
 *   must run as the preparing role). Without `statementRoles` (unsafe single-role mode) the
 *   default statement pool logs in as the bookkeeping role.
 *
 * Each statement role has two pools: one for branches, and a small one that only finishes
 * prepared transactions. Phase 2 releases the locks that waiting branches queue for, so it
 * must never wait for a connection behind them (a pool full of blocked prepares would
 * otherwise hold back the COMMIT PREPARED that unblocks them).
 */
import type { ConnectionOptions } from "node:tls";
import pg from "pg";
import { messageOf } from "../common/errors.js";
import type { ParticipantLogger } from "../common/logger.js";
import { readTlsFiles, tlsRefusal } from "../../shared/tls.js";
import type { PostgresParticipantConfig, StatementRoleConfig } from "./config.js";
import { ParticipantUnavailableError, PostgresConfigError } from "./errors.js";

/** A pool of one statement role; `role` is its current_user, learned at start. */
export interface StatementPool {
  /** `default` or the principal it serves. */
  readonly label: string;
  readonly pool: pg.Pool;
  /** COMMIT/ROLLBACK PREPARED only, as the same role (`finishPoolSize` connections). */
  readonly finishPool: pg.Pool;
  role: string;
}

export interface Pools {
  readonly bookkeeping: pg.Pool;
  readonly byLabel: ReadonlyMap<string, StatementPool>;
}

export function createPools(config: PostgresParticipantConfig, logger: ParticipantLogger): Pools {
  const tls = tlsOptions(config);
  const connection = {
    connectionString: config.connectionString,
    host: config.host,
    port: config.port,
    database: config.database,
    user: config.user,
    password: config.password,
    ...tls,
  };
  const bookkeeping = makePool(config, logger, {
    ...connection,
    max: config.bookkeepingPoolSize,
    statement_timeout: config.bookkeepingStatementTimeoutMs,
    lock_timeout: config.bookkeepingLockTimeoutMs,
    application_name: `verdict:${config.name}`.slice(0, 63),
  });
  const statementPool = (label: string, role: StatementRoleConfig | undefined): StatementPool => {
    const login = role === undefined ? connection : { ...tls, ...roleConnection(config, role) };
    return {
      label,
      role: "",
      finishPool: makePool(config, logger, {
        ...login,
        max: config.finishPoolSize,
        application_name: `verdict-finish:${config.name}:${label}`.slice(0, 63),
      }),
      pool: makePool(config, logger, {
        ...login,
        max: config.poolSize,
        statement_timeout: config.statementTimeoutMs,
        // A coordinator cut off mid-branch must not hold locks for long.
        idle_in_transaction_session_timeout: config.prepareTimeoutMs,
        application_name: `verdict-stmt:${config.name}:${label}`.slice(0, 63),
        // A branch is written in two flights of queries (branch-tx.ts); each query keeps its
        // own Sync, so a failing one does not swallow the answers behind it.
        pipeline: true,
      }),
    };
  };
  const byLabel = new Map<string, StatementPool>();
  byLabel.set("default", statementPool("default", config.statementRoles?.default));
  for (const [principal, role] of Object.entries(config.statementRoles?.byPrincipal ?? {})) {
    byLabel.set(principal, statementPool(principal, role));
  }
  return { bookkeeping, byLabel };
}

/**
 * `pg`'s `ssl` for `tls`: verify-full, never weaker (the default `rejectUnauthorized` and
 * host name check stay on). Empty without `tls` (a connection string may still set sslmode).
 */
function tlsOptions(config: PostgresParticipantConfig): { ssl?: ConnectionOptions } {
  if (config.tls === undefined) return {};
  try {
    return {
      ssl: { ...readTlsFiles(config.tls, `participant ${config.name}`), rejectUnauthorized: true },
    };
  } catch (e) {
    throw new PostgresConfigError(messageOf(e), { participant: config.name });
  }
}

/**
 * Opens one connection of every pool before `start` uses them, so that a TLS handshake we
 * refused (a certificate the CA does not vouch for, a wrong host name) or the server refused,
 * or credentials the server refused, stop the start with a configuration error: retrying
 * cannot help, unlike an unreachable server, which stays ParticipantUnavailableError (the
 * node keeps trying).
 */
export async function checkHandshakes(pools: Pools, participant: string): Promise<void> {
  const labelled: [string, pg.Pool][] = [
    ["the bookkeeping role", pools.bookkeeping],
    ...[...pools.byLabel.values()].map((p): [string, pg.Pool] => [
      `statement role ${p.label}`,
      p.pool,
    ]),
  ];
  for (const [role, pool] of labelled) {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw refusalAtStart(err, participant, role);
    }
    client.release();
  }
}

/**
 * SQLSTATE class 28, "invalid authorization specification": 28P01 a wrong password, 28000
 * no pg_hba.conf line admits the role (or its certificate). The server's message names the
 * role and the database, never the password.
 */
const credentialsRefused = new Set(["28P01", "28000"]);

function refusalAtStart(err: unknown, participant: string, role: string): Error {
  const tls = tlsRefusal(err);
  if (tls !== undefined) {
    return new PostgresConfigError(
      `participant ${participant}: TLS: ${tls}`,
      { participant },
      { cause: err },
    );
  }
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && credentialsRefused.has(code)) {
    return new PostgresConfigError(
      `participant ${participant}: PostgreSQL refused the credentials of ${role} ` +
        `(${code}: ${messageOf(err)}); check its user and password and pg_hba.conf`,
      { participant },
      { cause: err },
    );
  }
  return new ParticipantUnavailableError(
    `participant ${participant} unavailable: ${messageOf(err)}`,
    { participant },
    { cause: err },
  );
}

/** The connection of a statement role: its own URL, or the participant's with its user. */
function roleConnection(
  config: PostgresParticipantConfig,
  role: StatementRoleConfig,
): pg.PoolConfig {
  if (role.connectionString !== undefined) return { connectionString: role.connectionString };
  if (config.connectionString === undefined) {
    return {
      host: config.host,
      port: config.port,
      database: config.database,
      user: role.user,
      password: role.password,
    };
  }
  const url = new URL(config.connectionString);
  url.username = encodeURIComponent(role.user ?? "");
  url.password = encodeURIComponent(role.password ?? "");
  return { connectionString: url.toString() };
}

function makePool(
  config: PostgresParticipantConfig,
  logger: ParticipantLogger,
  options: pg.PoolConfig & { lock_timeout?: number },
): pg.Pool {
  const pool = new pg.Pool({
    ...options,
    connectionTimeoutMillis: config.connectTimeoutMs,
    keepAlive: true,
  });
  // Without listeners a broken connection (idle, or checked out between queries, e.g.
  // terminated by a rollback) would raise an uncaught 'error' and crash the process.
  pool.on("error", (err) =>
    logger.warn({ participant: config.name, err }, "idle connection failed"),
  );
  pool.on("connect", (client) =>
    client.on("error", (err) =>
      logger.warn({ participant: config.name, err }, "connection failed"),
    ),
  );
  return pool;
}
