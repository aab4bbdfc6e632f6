/**
 * A real node for the CLI tests: the compiled coordinator as a child process
 * (test/support/process-node.ts) on the deploy/local PostgreSQL, an account table in both
 * databases, an SDK client to make transactions, and the admin token in the environment
 * form the CLI reads it from.
 */
import { pgStatements, sql, VerdictClient } from "../../../client/index.js";
import {
  createProcessCluster,
  ensureBuilt,
  type ProcessCluster,
  type ProcessNode,
} from "../../support/process-node.js";
import { createAccounts, type Accounts } from "../api/harness.js";
import { ensureCliBuilt } from "./cli.js";

export interface CliNode {
  readonly cluster: ProcessCluster;
  readonly node: ProcessNode;
  readonly accounts: Accounts;
  readonly client: VerdictClient;
  /** `VERDICT_URL` and `VERDICT_ADMIN_TOKEN` for this node. */
  readonly adminEnv: Record<string, string>;
  /** Begins a transaction moving 1 from pg-a to pg-b (account 1); returns its xid. */
  transfer(): Promise<string>;
  /** Stops the node, drops the tables and the cluster. */
  destroy(): Promise<void>;
}

export async function startCliNode(): Promise<CliNode> {
  ensureBuilt();
  ensureCliBuilt();
  const cluster = await createProcessCluster();
  const accounts = await createAccounts({ "pg-a": [[1, 1000]], "pg-b": [[1, 1000]] });
  let node: ProcessNode;
  try {
    node = await cluster.start();
  } catch (e) {
    await accounts.drop();
    await cluster.destroy();
    throw e;
  }
  const client = new VerdictClient({ baseUrl: node.url, token: cluster.clientToken });
  const move = (db: "pg-a" | "pg-b", by: number) =>
    pgStatements(db, [
      sql(`update ${accounts.table} set balance = balance + $1 where id = 1`, [by], {
        expectRows: 1,
      }),
    ]);
  return {
    cluster,
    node,
    accounts,
    client,
    adminEnv: { VERDICT_URL: node.url, VERDICT_ADMIN_TOKEN: cluster.adminToken },
    async transfer() {
      const { xid } = await client.begin({ timeoutMs: 60_000 });
      await client.enlist(xid, move("pg-a", -1));
      await client.enlist(xid, move("pg-b", 1));
      return xid;
    },
    async destroy() {
      await cluster.kill();
      await accounts.drop();
      await cluster.destroy();
    },
  };
}
