/**
 * The service side of a service-prepared (XA-style) branch: after its own work, inside its
 * own transaction, the service records Verdict's marker and prepares with the gid Verdict
 * issued. The connection is the service's own (`pg`'s Client or PoolClient): the SDK needs
 * only its `query`, and so depends on no PostgreSQL driver.
 *
 * Requirements: the participant has started (it creates the `mark` function); the service
 * connects to the participant's database as one of the participant's statement roles
 * (COMMIT PREPARED must run as the preparing role, and Verdict needs a connection as it;
 * docs/security.md), which may EXECUTE `mark` and nothing else of Verdict's schema.
 */
import { gidLiteral } from "../shared/postgres/gid.js";
import { schemaTables } from "../shared/postgres/marker-tables.js";
import { ServiceBranchPrepareError } from "./errors.js";

/** What the SDK asks of a PostgreSQL connection; `pg`'s Client and PoolClient fit. */
export interface PgSession {
  query(text: string): Promise<PgCommandResult>;
  query(config: { text: string; values: unknown[] }): Promise<PgCommandResult>;
}

export interface PgCommandResult {
  /** The command tag: `PREPARE`, or `ROLLBACK` when the transaction had failed. */
  readonly command: string;
  readonly rowCount: number | null;
  readonly rows: readonly Record<string, unknown>[];
}

export interface ServiceBranchOptions {
  /** The participant's marker schema; default `verdict`. */
  readonly schema?: string;
}

/**
 * Inserts the marker and runs PREPARE TRANSACTION on `client`, which must be inside a
 * transaction block (BEGIN …). On success the session is no longer in a transaction and
 * the branch waits for Verdict's decision; report it prepared to Verdict next.
 * Throws ServiceBranchPrepareError if nothing was prepared.
 */
export async function prepareServiceBranch(
  client: PgSession,
  gid: string,
  options: ServiceBranchOptions = {},
): Promise<void> {
  const literal = gidLiteral(gid);
  const tables = schemaTables(options.schema ?? "verdict");
  try {
    // SAVEPOINT fails outside a transaction block: without this check the marker insert
    // would autocommit on its own and later read as "the branch committed".
    await client.query("savepoint verdict_in_transaction");
    await client.query("release savepoint verdict_in_transaction");
    const marker = await client.query({
      text: `select ${tables.mark}($1) as xid`,
      values: [gid],
    });
    if ((marker.rows[0]?.["xid"] ?? null) === null)
      throw new Error("Verdict already rolled this branch back");
  } catch (err) {
    await client.query("rollback").catch(() => undefined);
    throw new ServiceBranchPrepareError(
      `could not record the marker of branch ${gid}: ${err instanceof Error ? err.message : String(err)}`,
      gid,
      { cause: err },
    );
  }
  let command: string;
  try {
    command = (await client.query(`prepare transaction ${literal}`)).command;
  } catch (err) {
    await client.query("rollback").catch(() => undefined);
    throw new ServiceBranchPrepareError(
      `PREPARE TRANSACTION ${literal} failed: ${err instanceof Error ? err.message : String(err)}`,
      gid,
      { cause: err },
    );
  }
  if (command !== "PREPARE") {
    throw new ServiceBranchPrepareError(
      `PREPARE TRANSACTION ${literal} answered ${command}: the transaction had failed and was rolled back`,
      gid,
    );
  }
}
