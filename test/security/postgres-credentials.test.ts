/**
 * Credentials PostgreSQL refuses stop `verdict start` (the compiled CLI, as a process) instead
 * of being retried as an unreachable server, on the real PostgreSQL of the helper services:
 * - a wrong password of a participant's bookkeeping role (28P01): the process exits 1 within a
 *   few seconds, and its output names the participant, the role and the cause;
 * - the same for a statement role's wrong password;
 * - a role no pg_hba.conf line admits cannot be tested here (the shared server's pg_hba.conf is
 *   never changed): 28000 takes the same path, by its SQLSTATE;
 * - the wrong password itself appears nowhere in the output.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import {
  createProcessCluster,
  ensureBuilt,
  killLeftovers,
  type ProcessCluster,
} from "../support/process-node.js";
import { services } from "../support/services.js";

/** Far above a refused login's round trip, far below the node's start-up retry horizon. */
const exitWithinMs = 10_000;
const clusters: ProcessCluster[] = [];

before(() => ensureBuilt());
after(async () => {
  await killLeftovers();
  for (const c of clusters) await c.destroy();
});

const wrongPassword = () => `wrong-${randomBytes(9).toString("base64url")}`;

function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

async function refusedStart(participant: Record<string, unknown>): Promise<string> {
  const c = await createProcessCluster({ extraParticipants: [participant] });
  clusters.push(c);
  const startedMs = Date.now();
  await assert.rejects(c.start(), /the node exited \(code 1\) before listening/);
  const elapsedMs = Date.now() - startedMs;
  assert.ok(elapsedMs < exitWithinMs, `exited after ${elapsedMs} ms`);
  return c.readLog();
}

test("a wrong bookkeeping password exits 1 at start, naming the participant", async () => {
  const password = wrongPassword();
  const log = await refusedStart({
    name: "pg-wrong",
    kind: "postgres",
    connectionString: withPassword(services.pgUrlA, password),
    unsafeSingleRole: true,
  });
  assert.match(
    log,
    /participant pg-wrong: PostgreSQL refused the credentials of the bookkeeping role \(28P01: password authentication failed/,
  );
  assert.ok(!log.includes(password), "the password is not in the output");
});

test("a wrong statement-role password exits 1 at start, naming the role", async () => {
  const password = wrongPassword();
  const log = await refusedStart({
    name: "pg-wrong-stmt",
    kind: "postgres",
    connectionString: services.pgUrlA,
    statementRoles: { default: { user: services.pgStatementUser, password } },
  });
  assert.match(
    log,
    /participant pg-wrong-stmt: PostgreSQL refused the credentials of statement role default \(28P01/,
  );
  assert.ok(!log.includes(password), "the password is not in the output");
});
