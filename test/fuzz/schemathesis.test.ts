/**
 * Proves, with Schemathesis driving a real node (PostgreSQL, Redis and Kafka participants),
 * that the API keeps its published contract under generated input: every check of `--checks
 * all` passes (no 5xx, every answer matches the OpenAPI document in status, content type,
 * headers and body, invalid input is refused, valid input is not, undeclared methods are
 * refused), as a client and as an admin, through the coverage, fuzzing and stateful phases (the
 * stateful phase follows the document's links: begin → enlist → prepare/commit/abort/status).
 * And that requests the API refuses change nothing: the admin view of the transactions and
 * this cluster's prepared branches in PostgreSQL are the same before and after a run of
 * invalid requests only. docs/fuzz.md says how to run it longer.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ApiNode } from "../integration/api/harness.js";
import { startFuzzNode } from "./fuzz-node.js";
import { abortOpen, nodeState, seedTransactions } from "./node-state.js";
import {
  installSchemathesis,
  runSchemathesis,
  type FuzzResult,
  type FuzzRun,
} from "./schemathesis-run.js";

/** Budgets of the three runs: the file stays under about three minutes. */
const negativeTimeS = 30;
const fullTimeS = 45;
const maxExamples = 100;
const seed = Number(process.env.VERDICT_FUZZ_SEED ?? 20_240_601);
const allPhases: FuzzRun["phases"] = ["examples", "coverage", "fuzzing", "stateful"];

function report(label: string, r: FuzzResult): void {
  const classes = Object.entries(r.requestsByClass)
    .map(([cls, n]) => `${cls} ${n}`)
    .join(", ");
  const summary = r.output.slice(r.output.lastIndexOf("Test cases:")).split("\n")[1] ?? "";
  console.log(`schemathesis ${label}: ${r.requests} requests (${classes}); ${summary.trim()}`);
}

function assertClean(label: string, r: FuzzResult): void {
  // From the first section that says what went wrong (errors come before failures), else the
  // summary at the end.
  const found = [" ERRORS ", " FAILURES "]
    .map((title) => r.output.indexOf(title))
    .filter((i) => i >= 0);
  const start = found.length > 0 ? Math.min(...found) : Math.max(0, r.output.length - 4_000);
  const excerpt = r.output.slice(start, start + 20_000);
  assert.equal(r.exitCode, 0, `schemathesis ${label} exited ${r.exitCode}:\n${excerpt}`);
  assert.ok(r.requests > 0, `schemathesis ${label} sent no request`);
  assert.equal(r.requestsByClass["5xx"] ?? 0, 0, `schemathesis ${label}: server errors`);
}

describe("Schemathesis against a real node", { timeout: 300_000 }, () => {
  let st: string;
  let node: ApiNode;

  before(async () => {
    st = installSchemathesis();
    node = await startFuzzNode();
  });
  after(async () => {
    if (!node) return;
    await abortOpen(node);
    await node.stop();
  });

  test("refused requests change no transaction and no prepared branch", async () => {
    const seeded = await seedTransactions(node);
    const before = await nodeState(node);
    assert.equal(before.preparedGids.length, 1, "the seeded prepared transaction's branch");
    const r = await runSchemathesis(st, {
      url: node.url,
      token: node.adminToken,
      mode: "negative",
      phases: allPhases,
      maxExamples,
      maxTimeS: negativeTimeS,
      seed,
    });
    report("negative, admin token", r);
    const afterRun = await nodeState(node);
    console.log(
      `states before ${JSON.stringify(before.countsByState)}, after ${JSON.stringify(afterRun.countsByState)}`,
    );
    // Whatever changed was named by a request the node accepted; nothing a refusal named.
    const changed = Object.keys(afterRun.transactions).filter(
      (xid) => afterRun.transactions[xid] !== before.transactions[xid],
    );
    assert.deepEqual(
      changed.filter((xid) => !r.acceptedXids.has(xid)),
      [],
    );
    for (const xid of Object.values(seeded.xids)) {
      assert.equal(afterRun.transactions[xid], before.transactions[xid], `seeded ${xid}`);
    }
    const newGids = afterRun.preparedGids.filter((g) => !before.preparedGids.includes(g));
    const xidOfGid = (gid: string) => gid.split(":")[1] ?? "";
    assert.deepEqual(
      newGids.filter((g) => !r.acceptedXids.has(xidOfGid(g))),
      [],
    );
    assert.deepEqual(
      before.preparedGids.filter((g) => !afterRun.preparedGids.includes(g)),
      [],
    );
    assertClean("negative, admin token", r);
    await seeded.finish();
  });

  for (const role of ["client", "admin"] as const) {
    test(`as ${role}: every check passes in every phase`, async () => {
      const r = await runSchemathesis(st, {
        url: node.url,
        token: role === "client" ? node.clientToken : node.adminToken,
        mode: "all",
        phases: allPhases,
        maxExamples,
        maxTimeS: fullTimeS,
        seed,
      });
      report(`all modes, ${role} token`, r);
      assertClean(`all modes, ${role} token`, r);
    });
  }
});
