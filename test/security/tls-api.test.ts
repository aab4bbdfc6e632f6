/**
 * HTTPS for the API (docs/tls.md), against a real node process with `node.tls` and a CA made
 * by openssl in the test. Proves: the node prints an https:// URL and the SDK, given the CA,
 * begins and reads a transaction over its kept-alive pool (both calls on one connection); the
 * CLI does the same with VERDICT_CA_FILE and fails (exit 3) without it or with another CA;
 * the SDK refuses a node whose certificate another CA signed; plain HTTP to the TLS port
 * gets no HTTP answer; and SIGHUP swaps the certificate: a new connection sees the new
 * certificate's fingerprint, a connection opened before keeps being served, and the node
 * stays up.
 */
import assert from "node:assert/strict";
import { copyFile, readFile } from "node:fs/promises";
import { X509Certificate } from "node:crypto";
import https from "node:https";
import { connect, type PeerCertificate } from "node:tls";
import { after, before, describe, test } from "node:test";
import { VerdictClient } from "../../client/index.js";
import { readEventStream } from "../../client/events.js";
import type { ClientTls } from "../../client/http.js";
import { runCli } from "../integration/cli/cli.js";
import {
  createProcessCluster,
  ensureBuilt,
  type ProcessCluster,
  type ProcessNode,
} from "../support/process-node.js";
import { createTestCa, type TestCa } from "../support/tls-ca.js";

let ca: TestCa;
/** A second CA and its server certificate: what SIGHUP swaps in. */
let next: TestCa;
let cluster: ProcessCluster;
let node: ProcessNode;
/** The files the node's config names (copies: the SIGHUP test overwrites them). */
let certFile: string;
let keyFile: string;

before(async () => {
  ensureBuilt();
  [ca, next] = await Promise.all([createTestCa(), createTestCa()]);
  certFile = `${ca.dir}/node.crt`;
  keyFile = `${ca.dir}/node.key`;
  await copyFile(ca.serverCertFile, certFile);
  await copyFile(ca.serverKeyFile, keyFile);
  cluster = await createProcessCluster({ node: { tls: { certFile, keyFile } } });
  node = await cluster.start();
});
after(async () => {
  await cluster?.destroy();
  await ca?.dispose();
  await next?.dispose();
});

/** The certificate a fresh TLS connection to the node is shown (trusting both CAs). */
async function peerCertificate(url: string): Promise<{ cert: PeerCertificate; close: () => void }> {
  const { hostname, port } = new URL(url);
  const cas = await Promise.all([readFile(ca.caFile), readFile(next.caFile)]);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca: cas });
    socket.once("secureConnect", () =>
      resolve({ cert: socket.getPeerCertificate(), close: () => socket.destroy() }),
    );
    socket.once("error", reject);
  });
}

/** What a TLS client sees as the certificate's fingerprint. */
async function fingerprintOf(certPath: string): Promise<string> {
  return new X509Certificate(await readFile(certPath)).fingerprint256;
}

/** Counts the TLS connections every https.Agent opens while `work` runs. */
async function countingTlsConnections<T>(
  work: () => Promise<T>,
): Promise<{ result: T; connections: number }> {
  const proto = https.Agent.prototype as unknown as {
    createConnection: (...a: unknown[]) => unknown;
  };
  const original = proto.createConnection;
  let connections = 0;
  proto.createConnection = function (this: unknown, ...a: unknown[]) {
    connections++;
    return original.apply(this, a);
  };
  try {
    return { result: await work(), connections };
  } finally {
    proto.createConnection = original;
  }
}

describe("HTTPS for the API", () => {
  test("the node listens on https and the SDK, given the CA, is served over one kept-alive connection", async () => {
    assert.match(node.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const client = new VerdictClient({
      baseUrl: node.url,
      token: cluster.clientToken,
      tls: { ca: await readFile(ca.caFile) },
    });
    try {
      const { result, connections } = await countingTlsConnections(async () => {
        const begun = await client.begin();
        return { begun, seen: await client.status(begun.xid) };
      });
      assert.equal(result.seen.xid, result.begun.xid);
      assert.equal(result.seen.state, "active");
      assert.equal(connections, 1, "the second call reuses the kept-alive TLS connection");
    } finally {
      client.close();
    }
  });

  test("an event stream reaches the node with the client's CA, and is refused without it", async () => {
    const client = new VerdictClient({
      baseUrl: node.url,
      token: cluster.clientToken,
      tls: { ca: await readFile(ca.caFile) },
    });
    try {
      const { xid } = await client.begin();
      const stream = (tls?: ClientTls) =>
        readEventStream({
          url: `${node.url}/v1/transactions/${xid}/events`,
          headers: { authorization: `Bearer ${cluster.clientToken}` },
          timeoutMs: 10_000,
          idleMs: 10_000,
          onEvent: (e) => e.event === "state",
          ...(tls === undefined ? {} : { tls }),
        });
      assert.deepEqual(await stream({ ca: await readFile(ca.caFile) }), { kind: "done" });
      await assert.rejects(stream(), /self-signed|unable to verify|certificate/i);
      await client.abort(xid);
    } finally {
      client.close();
    }
  });

  test("the CLI reaches the node with VERDICT_CA_FILE, and fails without it or with another CA", async () => {
    const env = { VERDICT_URL: node.url, VERDICT_ADMIN_TOKEN: cluster.adminToken };
    const ok = await runCli(["admin", "cluster", "--json"], { ...env, VERDICT_CA_FILE: ca.caFile });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { mode: string }).mode, "local");
    const untrusted = await runCli(["admin", "cluster"], env);
    assert.equal(untrusted.code, 3, untrusted.stderr);
    assert.match(untrusted.stderr, /cannot reach .*(certificate|CERT)/i);
    const wrong = await runCli(["admin", "cluster"], { ...env, VERDICT_CA_FILE: next.caFile });
    assert.equal(wrong.code, 3, wrong.stderr);
    assert.match(wrong.stderr, /cannot reach .*(certificate|CERT)/i);
  });

  test("the SDK refuses a node whose certificate another CA signed", async () => {
    const client = new VerdictClient({
      baseUrl: node.url,
      token: cluster.clientToken,
      tls: { ca: await readFile(next.caFile) },
      retry: { attemptsMax: 1 },
    });
    try {
      await assert.rejects(client.begin(), /certificate|CERT/i);
    } finally {
      client.close();
    }
  });

  test("plain HTTP to the TLS port gets no HTTP answer", async () => {
    const plainUrl = node.url.replace(/^https:/, "http:");
    await assert.rejects(
      fetch(`${plainUrl}/v1/health/live`, { signal: AbortSignal.timeout(5_000) }),
      (e: Error) => e.name !== "TimeoutError",
    );
  });

  test("SIGHUP swaps the certificate for new connections; open ones and the node stay", async () => {
    const before = await peerCertificate(node.url);
    assert.equal(before.cert.fingerprint256, await fingerprintOf(ca.serverCertFile));
    // A kept-alive connection opened before the swap, trusting both CAs.
    const client = new VerdictClient({
      baseUrl: node.url,
      token: cluster.clientToken,
      tls: { ca: [await readFile(ca.caFile), await readFile(next.caFile)] },
    });
    try {
      const begun = await client.begin();
      await copyFile(next.serverCertFile, certFile);
      await copyFile(next.serverKeyFile, keyFile);
      process.kill(node.pid, "SIGHUP");
      await waitFor(() => cluster.readLog().includes("SIGHUP: TLS certificate and key reloaded"));
      const after = await peerCertificate(node.url);
      after.close();
      assert.equal(after.cert.fingerprint256, await fingerprintOf(next.serverCertFile));
      assert.notEqual(after.cert.serialNumber, before.cert.serialNumber);
      // The connection shaken hands with the old certificate is still served.
      const { result, connections } = await countingTlsConnections(() => client.status(begun.xid));
      assert.equal(result.state, "active");
      assert.equal(connections, 0, "served on the connection opened before the swap");
      assert.equal(node.exitStatus(), undefined, "the node is still running");
    } finally {
      before.close();
      client.close();
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`not within ${timeoutMs} ms; log:\n${cluster.logTail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
