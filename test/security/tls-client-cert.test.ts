/**
 * Client-certificate authentication on the API (docs/tls.md), against real node processes
 * and a CA made by openssl in the test. Proves: with `clientCertificate: require`, a client
 * without a certificate, or with one another CA signed, is refused at the TLS layer, and one
 * with a certificate signed by `caFile` is served, yet still needs its token (401 without);
 * with `request`, a client without a certificate is served, one presenting a certificate
 * another CA signed is refused, and one with a good certificate is served. The SDK and the
 * CLI (VERDICT_CLIENT_CERT / VERDICT_CLIENT_KEY) present certificates.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import https from "node:https";
import { after, before, describe, test } from "node:test";
import { VerdictClient, type ClientTls } from "../../client/index.js";
import { runCli } from "../integration/cli/cli.js";
import {
  createProcessCluster,
  ensureBuilt,
  type ProcessCluster,
  type ProcessNode,
} from "../support/process-node.js";
import { createTestCa, type TestCa } from "../support/tls-ca.js";

let ca: TestCa;
/** Another CA: its client certificate must be refused. */
let other: TestCa;
const nodes: Record<"require" | "request", { cluster?: ProcessCluster; node?: ProcessNode }> = {
  require: {},
  request: {},
};

before(async () => {
  ensureBuilt();
  [ca, other] = await Promise.all([createTestCa(), createTestCa()]);
  for (const mode of ["require", "request"] as const) {
    const cluster = await createProcessCluster({
      node: {
        tls: {
          certFile: ca.serverCertFile,
          keyFile: ca.serverKeyFile,
          caFile: ca.caFile,
          clientCertificate: mode,
        },
      },
    });
    nodes[mode].cluster = cluster;
    nodes[mode].node = await cluster.start();
  }
});
after(async () => {
  for (const n of Object.values(nodes)) await n.cluster?.destroy();
  await ca?.dispose();
  await other?.dispose();
});

function target(mode: "require" | "request"): { url: string; cluster: ProcessCluster } {
  const { cluster, node } = nodes[mode];
  assert.ok(cluster && node);
  return { url: node.url, cluster };
}

async function clientOf(mode: "require" | "request", certs: "none" | "good" | "other") {
  const tls: ClientTls = { ca: await readFile(ca.caFile) };
  const from = certs === "good" ? ca : certs === "other" ? other : undefined;
  const { url, cluster } = target(mode);
  return new VerdictClient({
    baseUrl: url,
    token: cluster.clientToken,
    retry: { attemptsMax: 1 },
    tls:
      from === undefined
        ? tls
        : {
            ...tls,
            cert: await readFile(from.clientCertFile),
            key: await readFile(from.clientKeyFile),
          },
  });
}

async function begins(client: VerdictClient): Promise<void> {
  try {
    const begun = await client.begin();
    assert.equal(begun.state, "active");
  } finally {
    client.close();
  }
}

async function refused(client: VerdictClient): Promise<void> {
  try {
    // Refused during or right after the handshake: an alert, or the connection closed.
    await assert.rejects(client.begin(), /certificate required|socket hang up|ECONNRESET/);
  } finally {
    client.close();
  }
}

describe("clientCertificate: require", () => {
  test("no certificate, or one another CA signed, is refused at the TLS layer", async () => {
    await refused(await clientOf("require", "none"));
    await refused(await clientOf("require", "other"));
  });

  test("a certificate signed by caFile is served, and the token is still required", async () => {
    await begins(await clientOf("require", "good"));
    const { url } = target("require");
    const tls = {
      ca: await readFile(ca.caFile),
      cert: await readFile(ca.clientCertFile),
      key: await readFile(ca.clientKeyFile),
    };
    const res = await new Promise<number>((resolve, reject) => {
      const req = https.request(`${url}/v1/transactions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        ...tls,
      });
      req.once("response", (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.once("error", reject);
      req.end("{}");
    });
    assert.equal(res, 401, "a client certificate does not replace the bearer token");
  });

  test("the CLI presents VERDICT_CLIENT_CERT and VERDICT_CLIENT_KEY", async () => {
    const { url, cluster } = target("require");
    const env = {
      VERDICT_URL: url,
      VERDICT_ADMIN_TOKEN: cluster.adminToken,
      VERDICT_CA_FILE: ca.caFile,
    };
    const without = await runCli(["admin", "cluster"], env);
    assert.equal(without.code, 3, without.stderr);
    const withCert = await runCli(["admin", "cluster"], {
      ...env,
      VERDICT_CLIENT_CERT: ca.clientCertFile,
      VERDICT_CLIENT_KEY: ca.clientKeyFile,
    });
    assert.equal(withCert.code, 0, withCert.stderr);
  });
});

describe("clientCertificate: request", () => {
  test("no certificate is served; a good one is served; one another CA signed is refused", async () => {
    await begins(await clientOf("request", "none"));
    await begins(await clientOf("request", "good"));
    await refused(await clientOf("request", "other"));
  });
});
