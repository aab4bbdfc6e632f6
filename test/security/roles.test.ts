/**
 * Roles against every route, generated from the route table (docs/security.md, "Roles"):
 * each role's token calls each route; a route the role may not call answers 403 forbidden
 * before anything is read or changed, and a route it may call never answers 401 or 403.
 * The expected roles per route are written out here by hand: a route added to the table
 * without a line below fails this test. Also: a token configured by its SHA-256 digest only
 * authenticates; and SIGHUP rotates tokens in a running process, the dropped secret still
 * accepted within the grace window and refused after it.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { buildRoutes } from "../../coordinator/api/contract/routes.js";
import { defaultSchemas } from "../../coordinator/api/contract/schemas.js";
import { sha256Hex } from "../../coordinator/config/load.js";
import { raw, startApiNode, type ApiNode } from "../integration/api/harness.js";
import { createProcessCluster, type ProcessCluster } from "../support/process-node.js";

type Role = "client" | "operator" | "auditor" | "admin";
const roles: readonly Role[] = ["client", "operator", "auditor", "admin"];
const operators: Role[] = ["operator", "admin"];

/** Who may call each route; `admin` is the former name of `operator`. */
const allowed: Readonly<Record<string, readonly Role[]>> = {
  beginTransaction: ["client", ...operators],
  enlistBranch: ["client", ...operators],
  reportBranchPrepared: ["client", ...operators],
  getTransaction: ["client", ...operators],
  watchTransaction: ["client", ...operators],
  prepareTransaction: ["client", ...operators],
  commitTransaction: ["client", ...operators],
  abortTransaction: ["client", ...operators],
  adminListTransactions: ["auditor", ...operators],
  adminGetTransaction: ["auditor", ...operators],
  adminResolveTransaction: operators,
  adminListParticipants: ["auditor", ...operators],
  adminGetCluster: ["auditor", ...operators],
  adminListAudit: ["auditor", ...operators],
  adminWatchEvents: ["auditor", ...operators],
  adminRunRecovery: operators,
  adminHandOverLeadership: operators,
};

const secret = () => randomBytes(18).toString("base64url");
const operatorSecret = secret();
const auditorSecret = secret();

let node: ApiNode;
before(async () => {
  node = await startApiNode({
    extraTokens: [
      // Configured by digest only: the file holds no secret.
      { id: "ops-1", role: "operator", secretSha256: sha256Hex(operatorSecret) },
      { id: "audit-1", role: "auditor", secret: auditorSecret },
    ],
  });
});
after(async () => {
  await node?.stop();
});

describe("every route against every role", () => {
  const routes = buildRoutes(defaultSchemas).filter((r) => r.auth !== "public");

  test("every route of the table has its expected roles here", () => {
    const missing = routes.map((r) => r.id).filter((id) => allowed[id] === undefined);
    assert.deepEqual(missing, [], "routes without an expectation in this test");
  });

  for (const route of routes) {
    test(route.id, async () => {
      const tokenOf: Record<Role, string> = {
        client: node.clientToken,
        operator: operatorSecret,
        auditor: auditorSecret,
        admin: node.adminToken,
      };
      const path = route.path
        .replace("{xid}", "0000000000000-000000000000-none")
        .replace("{n}", "1");
      for (const role of roles) {
        const a = route.stream
          ? await streamStatus(node.url, path, tokenOf[role])
          : await raw(node.url, route.method, path, {
              token: tokenOf[role],
              ...(route.method === "POST" ? { body: {} } : {}),
            });
        if (allowed[route.id]?.includes(role)) {
          assert.ok(![401, 403].includes(a.status), `${role} ${route.id}: ${a.status} ${a.text}`);
        } else {
          assert.equal(a.status, 403, `${role} ${route.id}: ${a.text}`);
          assert.equal((a.body as { error: { code: string } }).error.code, "forbidden");
        }
      }
    });
  }
});

/** An event stream's answer: its status, and the body of a refusal (a stream is not read). */
async function streamStatus(
  url: string,
  path: string,
  token: string,
): Promise<{ status: number; text: string; body: unknown }> {
  const res = await fetch(url + path, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(15_000),
  });
  if (res.status === 200) {
    await res.body?.cancel();
    return { status: 200, text: "(a stream)", body: undefined };
  }
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as unknown };
}

describe("token rotation by SIGHUP", () => {
  let cluster: ProcessCluster;
  before(async () => {
    cluster = await createProcessCluster();
  });
  after(async () => {
    await cluster?.destroy();
  });

  test("a dropped secret works within the grace window, then not; the new one works", async () => {
    const config = JSON.parse(await readFile(cluster.configPath, "utf8")) as {
      tokens: { id: string; role: string; secret?: string; secretSha256?: string }[];
      tokenRotationGraceMs?: number;
    };
    const p = await cluster.start();
    const read = (token: string) => raw(p.url, "GET", "/admin/v1/cluster", { token });
    assert.equal((await read(cluster.adminToken)).status, 200);

    const rotated = secret();
    config.tokens = config.tokens.map((t) =>
      t.role === "admin" ? { id: t.id, role: t.role, secretSha256: sha256Hex(rotated) } : t,
    );
    config.tokenRotationGraceMs = 1500;
    await writeFile(cluster.configPath, JSON.stringify(config));
    p.kill("SIGHUP");
    let reloaded = false;
    for (let i = 0; i < 50 && !reloaded; i++) {
      await sleep(100);
      reloaded = (await read(rotated)).status === 200;
    }
    assert.ok(reloaded, `the new secret was not accepted:\n${cluster.logTail()}`);
    assert.equal((await read(cluster.adminToken)).status, 200, "old secret within the grace");
    await sleep(1700);
    assert.equal((await read(cluster.adminToken)).status, 401, "old secret after the grace");
    assert.equal((await read(rotated)).status, 200);
  });
});
