/**
 * Orphans for recovery tests: branches prepared in PostgreSQL with this cluster's prefix that
 * the coordinator's log never heard of — what a service leaves when it prepared its branch and
 * the coordinator lost the transaction (it crashed before `preparing`). Each moves money, so
 * one committed by mistake shows in the bank's check.
 */
import { randomBytes } from "node:crypto";
import { newXid } from "../../coordinator/core/ids.js";
import type { FailpointName } from "../../coordinator/failpoints/failpoints.js";
import { prepareServiceBranch } from "../../client/service-branch.js";
import type { Bank, Db } from "./bank.js";

/** The failpoints inside recovery: their crash scenarios plant orphans first. */
export const recoveryFailpoints = [
  "recovery-after-scan",
  "after-recovery-durable",
] as const satisfies readonly FailpointName[];

export interface Orphan {
  readonly db: Db;
  readonly xid: string;
  readonly gid: string;
}

/** Prepares `count` orphans in each database; orphan i debits account i + 1 and writes a leg. */
export async function plantOrphans(
  bank: Bank,
  clusterId: string,
  schema: string,
  count: number,
): Promise<Orphan[]> {
  const orphans: Orphan[] = [];
  for (const db of ["pg-a", "pg-b"] as const) {
    for (let i = 0; i < count; i++) {
      const xid = newXid(Date.now(), randomBytes(10).toString("hex"));
      const gid = `${clusterId}:${xid}:1`;
      const client = await bank.pools[db].connect();
      try {
        await client.query("begin");
        // One account each: a prepared orphan holds its row until recovery rolls it back.
        const acct = i + 1;
        await client.query(`update ${bank.acct} set balance = balance - 1 where id = $1`, [acct]);
        await client.query(`insert into ${bank.legs} (id, acct, delta) values ($1, $2, -1)`, [
          `orphan-${xid}`,
          acct,
        ]);
        await prepareServiceBranch(client, gid, { schema });
      } finally {
        client.release();
      }
      orphans.push({ db, xid, gid });
    }
  }
  return orphans;
}
