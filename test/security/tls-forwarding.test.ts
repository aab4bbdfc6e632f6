/**
 * Authenticated forwarding between nodes (docs/tls.md, "Forwarding between nodes"), with three
 * real node processes over the real etcd and PostgreSQL of deploy/local. n1 leads; n2 holds
 * the same `cluster.forwardSecretFile` secret, n3 another. Proves: a call sent to n2 is
 * forwarded with a valid proof and answered by the leader; the same call sent to n3 is
 * refused 401 by the leader (its proof does not match); a call sent straight to the leader
 * marked as forwarded (a target term) without a proof, with a forged proof, with a stale
 * one, or with a valid proof over another body is refused 401, while the same call with a
 * valid proof over its own body is served; and a standby never forwards a call marked as
 * forwarded without a proof (401, no second hop). Then two nodes serving HTTPS with
 * `clientCertificate: require` (a CA made by openssl here): a standby forwards to the leader
 * over HTTPS, verifying it with `caFile` and presenting its own certificate.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { signForward } from "../../coordinator/cluster/forward-proof.js";
import { VerdictClient } from "../../client/index.js";
import { startCluster, type Cluster, type ClusterNode } from "../support/cluster.js";
import { ensureBuilt } from "../support/process-node.js";
import { createTestCa } from "../support/tls-ca.js";

let dir: string;
let cluster: Cluster;
let secret: Buffer;
let leader: ClusterNode;
let term: number;

before(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), "verdict-forward-"));
  secret = Buffer.from(randomBytes(24).toString("base64url"));
  const right = join(dir, "right.secret");
  const wrong = join(dir, "wrong.secret");
  await writeFile(right, `${secret.toString()}\n`);
  await writeFile(wrong, randomBytes(24).toString("base64url"));
  cluster = await startCluster({
    nodes: 3,
    clusterId: `tlsfwd-${randomBytes(4).toString("hex")}`,
    cluster: { forwardSecretFile: right },
    start: false,
  });
  // n3 signs with another secret.
  const n3 = cluster.node("n3").proc.configPath;
  const config = JSON.parse(await readFile(n3, "utf8")) as { cluster: Record<string, string> };
  config.cluster.forwardSecretFile = wrong;
  await writeFile(n3, JSON.stringify(config));
  // n1 first, alone, so that it leads.
  await cluster.node("n1").start();
  ({ node: leader, term } = await cluster.waitForLeader());
  assert.equal(leader.id, "n1");
  await cluster.node("n2").start();
  await cluster.node("n3").start();
});
after(async () => {
  await cluster?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function begin(
  url: string,
  headers: Record<string, string> = {},
  body = "{}",
): Promise<{ status: number; code?: string; message?: string }> {
  const res = await fetch(`${url}/v1/transactions`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${cluster.clientToken}`,
      "content-type": "application/json",
      ...headers,
    },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  const answer = (await res.json()) as { error?: { code: string; message: string } };
  return { status: res.status, code: answer.error?.code, message: answer.error?.message };
}

/** The headers of a forwarded begin, signed with `key`, sent at `sentAtMs`, over `body`. */
function proofHeaders(key: Buffer, body: string, sentAtMs = Date.now()): Record<string, string> {
  const bodySha256 = createHash("sha256").update(body).digest("hex");
  const call = { method: "POST", url: "/v1/transactions", term: String(term), bodySha256 };
  return {
    "verdict-target-term": String(term),
    "verdict-forward-body-sha256": bodySha256,
    "verdict-forward-proof": signForward(key, call, sentAtMs),
  };
}

describe("forwarding between nodes is authenticated", () => {
  test("a standby with the cluster's secret forwards, and the leader answers", async () => {
    const answer = await begin(cluster.node("n2").url);
    assert.equal(answer.status, 201, JSON.stringify(answer));
  });

  test("a standby with another secret is refused by the leader", async () => {
    const answer = await begin(cluster.node("n3").url);
    assert.equal(answer.status, 401, JSON.stringify(answer));
    assert.equal(answer.code, "unauthorized");
    assert.match(answer.message ?? "", /cluster proof/);
  });

  test("a call marked as forwarded without a valid proof is refused by the leader", async () => {
    const body = '{"timeoutMs":30000}';
    const cases: Record<string, Record<string, string>> = {
      "no proof": { "verdict-target-term": String(term) },
      "a forged proof": {
        ...proofHeaders(secret, body),
        "verdict-forward-proof": `v1:${Date.now()}:${randomBytes(32).toString("hex")}`,
      },
      "another secret": proofHeaders(randomBytes(24), body),
      "a stale proof": proofHeaders(secret, body, Date.now() - 10 * 60_000),
      "a proof over another body": proofHeaders(secret, "{}"),
    };
    for (const [what, headers] of Object.entries(cases)) {
      const answer = await begin(leader.url, headers, body);
      assert.equal(answer.status, 401, `${what}: ${JSON.stringify(answer)}`);
      assert.equal(answer.code, "unauthorized", what);
    }
    const proven = await begin(leader.url, proofHeaders(secret, body), body);
    assert.equal(proven.status, 201, `a valid proof: ${JSON.stringify(proven)}`);
  });

  test("a standby does not take a call marked as forwarded without a proof", async () => {
    const answer = await begin(cluster.node("n2").url, { "verdict-target-term": String(term) });
    assert.equal(answer.status, 401, JSON.stringify(answer));
  });
});

describe("forwarding over HTTPS with client certificates", () => {
  test("a standby forwards to a leader that requires client certificates", async () => {
    const ca = await createTestCa();
    const tlsCluster = await startCluster({
      nodes: 2,
      clusterId: `tlsfwd-${randomBytes(4).toString("hex")}`,
      node: {
        tls: {
          certFile: ca.serverCertFile,
          keyFile: ca.serverKeyFile,
          caFile: ca.caFile,
          clientCertificate: "require",
        },
      },
      cluster: { forwardSecretFile: join(dir, "right.secret") },
      start: false,
    });
    const tls = {
      ca: await readFile(ca.caFile),
      cert: await readFile(ca.clientCertFile),
      key: await readFile(ca.clientKeyFile),
    };
    const clientOf = (node: ClusterNode, token: string) =>
      new VerdictClient({ baseUrl: node.url, token, tls, retry: { attemptsMax: 1 } });
    try {
      const [n1, n2] = [tlsCluster.node("n1"), tlsCluster.node("n2")];
      await n1.start();
      // Leading once its own view names it (the cluster helper's view speaks plain fetch).
      await until(async () => {
        const view = await adminCluster(n1.url, tlsCluster.adminToken, tls);
        return view.leaderId === "n1" && view.members.some((m) => m.role === "leader");
      });
      await n2.start();
      assert.match(n2.url, /^https:/);
      const client = clientOf(n2, tlsCluster.clientToken);
      try {
        const begun = await client.begin();
        assert.equal(begun.state, "active");
        assert.equal((await client.status(begun.xid)).state, "active");
      } finally {
        client.close();
      }
    } finally {
      await tlsCluster.destroy();
      await ca.dispose();
    }
  });
});

/** GET /admin/v1/cluster over HTTPS with a client certificate. */
async function adminCluster(
  url: string,
  token: string,
  tls: { ca: Buffer; cert: Buffer; key: Buffer },
): Promise<{ leaderId: string | null; members: { role: string }[] }> {
  return new Promise((resolve, reject) => {
    const req = https.get(`${url}/admin/v1/cluster`, {
      headers: { authorization: `Bearer ${token}` },
      ...tls,
    });
    req.once("response", (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.once("end", () => {
        try {
          resolve(JSON.parse(text) as Awaited<ReturnType<typeof adminCluster>>);
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    });
    req.once("error", reject);
  });
}

async function until(probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > end) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
