/**
 * Service-prepared PostgreSQL branches in one call: the service's own work on its own
 * connection, prepared with the gid Verdict issued (docs/architecture.md §7.1).
 */
import { pgServicePrepared } from "./branches.js";
import type { VerdictClient } from "./client.js";
import { prepareServiceBranch } from "./service-branch.js";
import type { PgSession, ServiceBranchOptions } from "./service-branch.js";
import type { EnlistResponse } from "./wire.js";

/**
 * Enlists a service-prepared branch on `participant`, runs BEGIN and `work` on `pg`
 * (a connection to that participant's database, as its role), inserts Verdict's marker
 * and PREPARE TRANSACTION with the branch's gid, then reports the branch prepared.
 *
 * If `work` or the prepare fails, the local transaction is rolled back and the error
 * rethrown; the branch then never reports in and the transaction cannot commit. If the
 * report fails after the prepare, the prepared branch is left to Verdict: it commits or
 * rolls it back with the transaction (presumed abort if the transaction never commits).
 * `options.schema`: the participant's marker schema, if it is not the default.
 */
export async function runServicePrepared<Session extends PgSession>(
  client: VerdictClient,
  xid: string,
  participant: string,
  pg: Session,
  work: (pg: Session) => Promise<void>,
  options: ServiceBranchOptions = {},
): Promise<EnlistResponse> {
  const enlisted = await client.enlist(xid, pgServicePrepared(participant));
  await pg.query("BEGIN");
  try {
    await work(pg);
  } catch (err) {
    await pg.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
  // Rolls back by itself when it fails.
  await prepareServiceBranch(pg, enlisted.branchId, options);
  await client.reportPrepared(xid, enlisted.branch);
  return enlisted;
}
