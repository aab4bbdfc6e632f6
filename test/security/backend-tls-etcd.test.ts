/**
 * A Verdict node in etcd mode over TLS and etcd authentication (docs/tls-backends.md), as a
 * real process (the compiled CLI), against private one-member etcds this test starts with a
 * CA it generates (the shared etcd of deploy/local is not used):
 * - etcd with `--client-cert-auth`: given `log.tls` (CA, client certificate and key) the
 *   node leads, a transfer commits (balances read from PostgreSQL, the decision read from
 *   etcd over TLS), and the cluster view reaches the member over TLS too;
 * - without the client certificate, or trusting a CA that did not sign etcd's certificate,
 *   the node exits at start with an error that names etcd and says TLS was refused;
 * - etcd with user/password auth: `log.auth` with the password in a file leads and commits;
 *   a wrong password exits at start saying etcd refused the credentials, and the password
 *   appears nowhere in the node's output.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pgStatements, sql, VerdictClient } from "../../client/index.js";
import { connectEtcd, connectionDefaults } from "../../coordinator/log/etcd/client.js";
import { readTlsFiles } from "../../shared/tls.js";
import { createAccounts, raw, type Accounts } from "../integration/api/harness.js";
import { suffix } from "../support/participant-helpers.js";
import {
  createProcessCluster,
  ensureBuilt,
  killLeftovers,
  type ProcessCluster,
} from "../support/process-node.js";
import { createTestCa, type TestCa } from "../support/tls-ca.js";
import { startTlsEtcd, type TlsEtcd } from "../support/tls-etcd.js";

const leaderWaitMs = 15_000;
const password = `etcd-root-${suffix()}-pw`;

let ca: TestCa;
let certEtcd: TlsEtcd;
let authEtcd: TlsEtcd;
let accounts: Accounts;
const clusters: ProcessCluster[] = [];

before(async () => {
  ensureBuilt();
  ca = await createTestCa();
  [certEtcd, authEtcd] = await Promise.all([
    startTlsEtcd(ca),
    startTlsEtcd(ca, { clientCertAuth: false, rootPassword: password }),
  ]);
  accounts = await createAccounts({ "pg-a": [[1, 1000]], "pg-b": [[1, 0]] });
});

after(async () => {
  await killLeftovers();
  for (const c of clusters) await c.destroy();
  await accounts?.drop();
  await certEtcd?.dispose();
  await authEtcd?.dispose();
  await ca?.dispose();
});

async function cluster(etcd: TlsEtcd, security: Record<string, unknown>) {
  const clusterId = `tls-${suffix()}`;
  const c = await createProcessCluster({
    nodeId: "tls-1",
    // A record must fit one etcd request (docs/etcd.md, "Limits").
    limits: { payloadBytesPerTransactionMax: 256 * 1024 },
    log: { kind: "etcd", endpoints: [etcd.endpoint], clusterId, leaseTtlMs: 3000, ...security },
  });
  clusters.push(c);
  return { c, clusterId };
}

/** Until the node says it leads (and serves); bounded. */
async function awaitLeading(url: string, token: string): Promise<void> {
  const until = Date.now() + leaderWaitMs;
  let last = "";
  while (Date.now() < until) {
    const r = await raw(url, "GET", "/admin/v1/cluster", { token });
    last = r.text;
    const v = r.body as { leaderId?: string; term?: number };
    if (r.status === 200 && v.leaderId === "tls-1" && (v.term ?? 0) > 0) return;
    await sleep(200);
  }
  throw new Error(`the node did not lead within ${leaderWaitMs} ms: ${last}`);
}

async function commitTransfer(url: string, token: string, amount: number): Promise<string> {
  const client = new VerdictClient({ baseUrl: url, token });
  try {
    const view = await client.transact(
      (["pg-a", "pg-b"] as const).map((db) =>
        pgStatements(db, [
          sql(
            `update ${accounts.table} set balance = balance ${db === "pg-a" ? "-" : "+"} $1 where id = 1`,
            [amount],
            { expectRows: 1 },
          ),
        ]),
      ),
      { timeoutMs: 10_000 },
    );
    assert.equal(view.state, "committed");
    return view.xid;
  } finally {
    client.close();
  }
}

const clientCert = () => ({
  caFile: ca.caFile,
  certFile: ca.clientCertFile,
  keyFile: ca.clientKeyFile,
});

describe("etcd with client certificates", () => {
  test("with log.tls the node leads and commits; the decision is in etcd", async () => {
    const { c, clusterId } = await cluster(certEtcd, { tls: clientCert() });
    const node = await c.start();
    await awaitLeading(node.url, c.adminToken);
    await commitTransfer(node.url, c.clientToken, 10);
    assert.deepEqual(
      [await accounts.balance("pg-a", 1), await accounts.balance("pg-b", 1)],
      [990, 10],
    );
    const etcd = connectEtcd({
      endpoints: [certEtcd.endpoint],
      ...connectionDefaults,
      security: { tls: readTlsFiles(clientCert(), "test") },
    });
    try {
      const keys = await etcd.getAll().prefix(`/verdict/${clusterId}/`).keys();
      assert.ok(keys.length > 0, "the cluster's keys are in the TLS etcd");
    } finally {
      etcd.close();
    }
    const view = await raw(node.url, "GET", "/admin/v1/cluster", { token: c.adminToken });
    const health = (view.body as { etcd: { endpoints: { healthy: boolean }[] } }).etcd;
    assert.deepEqual(
      health.endpoints.map((e) => e.healthy),
      [true],
      view.text,
    );
  });

  test("without the client certificate the node exits at start: TLS refused", async () => {
    const { c } = await cluster(certEtcd, { tls: { caFile: ca.caFile } });
    await assert.rejects(c.start(), /cannot use etcd at 127\.0\.0\.1:\d+: .*TLS was refused/s);
  });

  test("trusting another CA the node exits at start: TLS refused", async () => {
    const { c } = await cluster(certEtcd, { tls: { ...clientCert(), caFile: ca.otherCaFile } });
    await assert.rejects(c.start(), /cannot use etcd at .*TLS was refused/s);
  });
});

describe("etcd with user and password", () => {
  test("log.auth with a password file leads and commits", async () => {
    const passwordFile = join(ca.dir, "etcd-password");
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    const { c } = await cluster(authEtcd, {
      tls: { caFile: ca.caFile },
      auth: { username: "root", passwordFile },
    });
    const node = await c.start();
    await awaitLeading(node.url, c.adminToken);
    await commitTransfer(node.url, c.clientToken, 5);
    assert.equal(await accounts.balance("pg-b", 1), 15);
    assert.ok(!c.readLog().includes(password), "the password is never logged");
  });

  test("a wrong password exits at start: etcd refused the credentials", async () => {
    const wrong = `${password}-wrong`;
    const { c } = await cluster(authEtcd, {
      tls: { caFile: ca.caFile },
      auth: { username: "root", password: wrong },
    });
    await assert.rejects(c.start(), /cannot use etcd at .*etcd refused the credentials/s);
    assert.ok(!c.readLog().includes(wrong), "the password is never logged");
  });
});
