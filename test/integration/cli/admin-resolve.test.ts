/**
 * `verdict admin resolve` and `verdict admin recovery` (the compiled CLI) against a real node:
 * - resolve without --reason is bad usage (exit 2) and leaves the transaction prepared;
 * - an operator's commit of a prepared transaction (POST …/prepare, then resolve --action
 *   commit) prints the transaction decided commit with the reason in its history, the rows
 *   change in both databases and no prepared branch is left; the reason is in the log (dump);
 * - repeating the same resolve answers the same (exit 0); abort after the commit is refused
 *   (exit 1: the decision never changes); an unknown xid exits 1 with transaction-not-found;
 * - recovery prints its counts and "errors: none"; --json is the recovery report;
 * - `admin audit` lists the resolutions and the refused abort; `--export` prints every record
 *   as JSON lines, in sequence.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { preparedOf, raw } from "../api/harness.js";
import { runCli, shown } from "./cli.js";
import { startCliNode, type CliNode } from "./fixture.js";

let n: CliNode;
let xid: string;
const reason = "ops ticket 42: the client crashed after prepare";
const waitMs = 15_000;

const admin = (args: string[]) => runCli(["admin", ...args], n.adminEnv);

async function state(x: string): Promise<string> {
  const a = await raw(n.node.url, "GET", `/admin/v1/transactions/${x}`, {
    token: n.cluster.adminToken,
  });
  assert.equal(a.status, 200, a.text);
  return (a.body as { state: string }).state;
}

describe("verdict admin resolve and recovery", () => {
  before(async () => {
    n = await startCliNode();
    xid = await n.transfer();
    const prepared = await raw(n.node.url, "POST", `/v1/transactions/${xid}/prepare`, {
      token: n.cluster.clientToken,
      body: {},
    });
    assert.equal(prepared.status, 200, prepared.text);
  });
  after(async () => {
    // If resolve failed, abort so that no prepared branch outlives the test.
    if (xid && (await state(xid).catch(() => "gone")) === "prepared") await n.client.abort(xid);
    await n?.destroy();
  });

  test("resolve requires --reason and sends nothing without it", async () => {
    const r = await admin(["resolve", xid, "--action", "commit"]);
    assert.equal(r.code, 2, shown(r));
    assert.match(r.stderr, /--reason TEXT is required/);
    const blank = await admin(["resolve", xid, "--action", "commit", "--reason", "  "]);
    assert.equal(blank.code, 2, shown(blank));
    const noAction = await admin(["resolve", xid, "--reason", reason]);
    assert.equal(noAction.code, 2, shown(noAction));
    assert.match(noAction.stderr, /--action must be one of commit, abort, settle, forget/);
    assert.equal(await state(xid), "prepared");
  });

  test("an operator commits a prepared transaction: decided, applied, audited", async () => {
    const r = await admin(["resolve", xid, "--action", "commit", "--reason", reason]);
    assert.equal(r.code, 0, shown(r));
    assert.match(r.stdout, new RegExp(`^xid\\s+${xid}$`, "m"));
    assert.match(r.stdout, /^state\s+(committed|committing) \(decision commit\)$/m);
    assert.ok(r.stdout.includes(reason), `the reason is in the history:\n${r.stdout}`);

    const deadline = Date.now() + waitMs;
    while ((await state(xid)) !== "committed" && Date.now() < deadline) await sleep(100);
    assert.equal(await state(xid), "committed");
    assert.equal(await n.accounts.balance("pg-a", 1), 999);
    assert.equal(await n.accounts.balance("pg-b", 1), 1001);
    assert.deepEqual(await preparedOf(await n.cluster.clusterId()), []);

    const again = await admin(["resolve", xid, "--action", "commit", "--reason", reason]);
    assert.equal(again.code, 0, shown(again));
    const abort = await admin(["resolve", xid, "--action", "abort", "--reason", reason]);
    assert.equal(abort.code, 1, shown(abort));
    assert.match(abort.stderr, /^error (invalid-state|transaction-committed): /);
    const unknown = await admin(["resolve", "no-such-xid", "--action", "abort", "--reason", "x"]);
    assert.equal(unknown.code, 1, shown(unknown));
    assert.match(unknown.stderr, /^error transaction-not-found: /);
  });

  test("recovery prints its counts; --json is the report", async () => {
    const r = await admin(["recovery"]);
    assert.equal(r.code, 0, shown(r));
    assert.match(r.stdout, /^recovery ran \S+ → \S+ \(\d+ ms\)$/m);
    for (const label of ["branches found", "committed", "rolled back", "left for later"]) {
      assert.match(r.stdout, new RegExp(`^${label}\\s+\\d+$`, "m"));
    }
    assert.match(r.stdout, /^errors: none$/m);
    const j = await admin(["recovery", "--json"]);
    assert.equal(j.code, 0, shown(j));
    const report = JSON.parse(j.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(report).sort(), [
      "branchesCommitted",
      "branchesFound",
      "branchesLeft",
      "branchesPending",
      "branchesRolledBack",
      "errors",
      "finishedAt",
      "startedAt",
    ]);
    assert.deepEqual(report.errors, []);
  });

  test("admin audit shows the resolutions and the refusal; --export is JSON lines", async () => {
    const r = await admin(["audit"]);
    assert.equal(r.code, 0, shown(r));
    const rows = r.stdout.split("\n").filter((l) => l.includes(xid));
    assert.ok(
      rows.some((l) => / adminResolveTransaction .* 200 +committed/.test(l)),
      r.stdout,
    );
    assert.ok(
      rows.some((l) => / 409 +(invalid-state|transaction-committed)/.test(l)),
      r.stdout,
    );
    const e = await admin(["audit", "--export"]);
    assert.equal(e.code, 0, shown(e));
    const records = e.stdout
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as { seq: number; reason?: string });
    assert.deepEqual(
      records.map((x) => x.seq),
      records.map((_, i) => i + 1),
    );
    assert.ok(records.some((x) => x.reason === reason));
    const page = await admin(["audit", "--limit", "1", "--json"]);
    assert.equal(page.code, 0, shown(page));
    assert.equal((JSON.parse(page.stdout) as { nextCursor: string | null }).nextCursor, "1");
  });

  test("the operator's reason is in the decision log", async () => {
    // Stopped only once committed: a node left holding a prepared branch is aborted in after().
    assert.equal(await state(xid), "committed");
    n.node.kill("SIGTERM");
    await n.node.exited;
    const d = await runCli(["log", "dump", "--data-dir", n.cluster.dataDir]);
    assert.equal(d.code, 0, shown(d));
    const decide = d.stdout.split("\n").find((l) => / decide +/.test(l) && l.includes(xid));
    assert.ok(decide, d.stdout);
    assert.match(decide, / commit operator-commit\b/);
    assert.ok(decide.includes(reason), decide);
  });
});
