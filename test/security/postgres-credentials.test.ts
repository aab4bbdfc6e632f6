/**
 * Credentials PostgreSQL refuses stop `verdict start` (the compiled CLI, as a process) instead
 * of being retried as an unreachable server, on the real PostgreSQL of the helper services:
 * - a wrong password of a participant's bookkeeping role (28P01): the process exits 1 within a
 *   few seconds, and its output names the participant, the role and the cause;
 * - the same for a statement role's wrong password;
 * - a connection no pg_hba.conf line admits (28000), on a private server that takes TLS only,
 *   reached without TLS: the same exit, naming 28000;
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
import { createTestCa, type TestCa } from "../support/tls-ca.js";
import { startTlsPostgres, type TlsPostgres } from "../support/tls-postgres.js";

/** Far above a refused login's round trip, far below the node's start-up retry horizon. */
const exitWithinMs = 10_000;
const clusters: ProcessCluster[] = [];
let ca: TestCa;
let tlsOnly: TlsPostgres;

before(async () => {
  ensureBuilt();
  ca = await createTestCa();
  tlsOnly = await startTlsPostgres(ca);
});
after(async () => {
  await killLeftovers();
  for (const c of clusters) await c.destroy();
  await tlsOnly?.dispose();
  await ca?.dispose();
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

test("a connection no pg_hba.conf line admits exits 1 at start (28000)", async () => {
  const log = await refusedStart({
    name: "pg-no-hba",
    kind: "postgres",
    // The server has only hostssl lines: a plaintext login matches none.
    connectionString: tlsOnly.url(),
    unsafeSingleRole: true,
  });
  assert.match(
    log,
    /participant pg-no-hba: PostgreSQL refused the credentials of the bookkeeping role \(28000: no pg_hba.conf entry/,
  );
  assert.ok(!log.includes(tlsOnly.password), "the password is not in the output");
});
