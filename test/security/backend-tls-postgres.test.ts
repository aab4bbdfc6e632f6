/**
 * The PostgreSQL participant over TLS (docs/tls-backends.md), against a throwaway server that
 * accepts TLS only, its certificate signed by a CA this test generates:
 * - with `tls.caFile`, every pool (bookkeeping and statement role) connects over TLS, and a
 *   branch prepared and committed through it is read back on a direct TLS connection;
 * - the same through the connection string (`sslmode=verify-full&sslrootcert=…`);
 * - a CA that did not sign the server's certificate, or a name the certificate does not
 *   carry, stops `start` with a non-retryable configuration error naming TLS (the node then
 *   refuses to start instead of retrying forever);
 * - the server refuses a plaintext connection;
 * - `tls` together with sslmode in the connection string, or an unreadable CA file, is refused
 *   when the participant is made;
 * - the node's logger censors passwords and connection strings a log line might carry.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import pg from "pg";
import { createPostgresParticipant } from "../../participants/postgres/participant.js";
import type { PostgresParticipantConfigInput } from "../../participants/postgres/config.js";
import type { PostgresPayload } from "../../participants/postgres/payload.js";
import type { BranchId } from "../../participants/participant.js";
import { createLogger } from "../../coordinator/telemetry/logger.js";
import { deadlineIn, term } from "../integration/postgres/helpers.js";
import { createTestCa, type TestCa } from "../support/tls-ca.js";
import { startTlsPostgres, type TlsPostgres } from "../support/tls-postgres.js";

let ca: TestCa;
let server: TlsPostgres;
let direct: pg.Client;
const clusterId = "tls-pg";

before(async () => {
  ca = await createTestCa();
  server = await startTlsPostgres(ca);
  direct = new pg.Client({
    connectionString: server.url(),
    ssl: { ca: readFileSync(ca.caFile) },
  });
  await direct.connect();
  await direct.query("create table accounts (id int primary key, balance int not null)");
  await direct.query("insert into accounts values (1, 100)");
});
after(async () => {
  await direct?.end();
  await server?.dispose();
  await ca?.dispose();
});

const participant = (overrides: Partial<PostgresParticipantConfigInput>) =>
  createPostgresParticipant({
    name: "pg-tls",
    connectionString: server.url(),
    statementRoles: { default: { user: "verdict_stmt", password: server.password } },
    poolSize: 2,
    bookkeepingPoolSize: 2,
    inFlightMax: 10,
    connectTimeoutMs: 3_000,
    ...overrides,
  });

const add = (amount: number): PostgresPayload => ({
  kind: "statements",
  statements: [
    {
      sql: "update accounts set balance = balance + $1 where id = 1",
      params: [amount],
      expectRows: 1,
    },
  ],
});

async function commitOne(p: ReturnType<typeof participant>, n: number, amount: number) {
  const branchId = `${clusterId}:x${n}:1` as BranchId;
  assert.deepEqual(await p.prepare({ branchId, payload: add(amount) }, deadlineIn(5_000)), {
    vote: "yes",
  });
  assert.deepEqual(await p.commit({ branchId, payload: add(amount) }, term), { outcome: "done" });
}

async function balance(): Promise<number | undefined> {
  const { rows } = await direct.query<{ balance: number }>(
    "select balance from accounts where id = 1",
  );
  return rows[0]?.balance;
}

void test("with tls.caFile every pool connects over TLS and a branch commits", async () => {
  const p = participant({ tls: { caFile: ca.caFile } });
  try {
    await p.start(clusterId);
    await commitOne(p, 1, 10);
    assert.equal(await balance(), 110);
    // Each of the participant's sessions (bookkeeping, statement role and the statement
    // role's finish pool, which ran COMMIT PREPARED) is encrypted.
    const { rows } = await direct.query<{ name: string; ssl: boolean }>(
      `select a.application_name as name, s.ssl from pg_stat_activity a join pg_stat_ssl s using (pid)
       where a.application_name like 'verdict%'`,
    );
    const names = new Set(rows.map((r) => r.name.split(":")[0]));
    assert.deepEqual([...names].sort(), ["verdict", "verdict-finish", "verdict-stmt"]);
    assert.ok(
      rows.every((r) => r.ssl),
      JSON.stringify(rows),
    );
  } finally {
    await p.close();
  }
});

void test("sslmode=verify-full with sslrootcert in the connection string works too", async () => {
  const p = participant({
    connectionString: `${server.url()}?sslmode=verify-full&sslrootcert=${encodeURIComponent(ca.caFile)}`,
  });
  try {
    await p.start(clusterId);
    await commitOne(p, 2, 5);
    assert.equal(await balance(), 115);
  } finally {
    await p.close();
  }
});

void test("a CA that did not sign the server's certificate stops start, not retryable", async () => {
  const p = participant({ tls: { caFile: ca.otherCaFile } });
  try {
    await assert.rejects(
      p.start(clusterId),
      (e: Error & { code?: string; retryable?: boolean }) => {
        assert.equal(e.name, "PostgresConfigError");
        assert.equal(e.retryable, false);
        assert.match(e.message, /participant pg-tls: TLS: the server's certificate is not trusted/);
        assert.match(e.message, /tls\.caFile/);
        return true;
      },
    );
  } finally {
    await p.close();
  }
});

void test("a name the certificate does not carry is refused (verify-full checks the host)", async () => {
  const p = participant({ tls: { caFile: ca.caFile, serverName: "db.elsewhere.test" } });
  try {
    await assert.rejects(p.start(clusterId), /TLS: .*ERR_TLS_CERT_ALTNAME_INVALID/);
  } finally {
    await p.close();
  }
});

void test("the server refuses a plaintext connection", async () => {
  const plain = new pg.Client({ connectionString: server.url(), ssl: false });
  await assert.rejects(plain.connect(), (e: Error & { code?: string }) => {
    assert.equal(e.code, "28000");
    assert.match(e.message, /no encryption/);
    return true;
  });
  await plain.end().catch(() => undefined);
});

void test("tls with sslmode in the connection string, or an unreadable CA, is refused", () => {
  assert.throws(
    () =>
      participant({
        connectionString: `${server.url()}?sslmode=verify-full`,
        tls: { caFile: ca.caFile },
      }),
    /not both/,
  );
  assert.throws(
    () => participant({ tls: { caFile: `${ca.dir}/missing.crt` } }),
    /participant pg-tls: cannot read tls\.caFile .*missing\.crt/,
  );
  assert.throws(
    () => participant({ tls: { caFile: ca.caFile, certFile: ca.clientCertFile } }),
    /certFile and keyFile together/,
  );
});

void test("the logger censors passwords and connection strings", () => {
  const lines: string[] = [];
  const logger = createLogger("info", "tls-test", { write: (line: string) => lines.push(line) });
  logger.warn(
    {
      password: server.password,
      participant: { connectionString: server.url(), tls: { caFile: ca.caFile } },
      log: { auth: { username: "root", password: server.password } },
    },
    "a line carrying secrets by mistake",
  );
  assert.equal(lines.length, 1);
  assert.ok(!lines[0]!.includes(server.password), lines[0]);
  assert.match(lines[0]!, /"connectionString":"\[redacted\]"/);
  assert.match(lines[0]!, /"caFile":"[^"]+ca\.crt"/, "what is not secret stays");
});
