/**
 * The metrics an operator alerts on move with what they describe, on a real node:
 * - `verdict_leader` is 1 and `verdict_leadership_changes_total{change="gained"}` counts the
 *   start's leadership;
 * - `verdict_participant_up` follows the participant checks of /healthz;
 * - `verdict_in_doubt_oldest_age_seconds` is the age of a transaction left prepared, and 0
 *   once it is finished;
 * - `verdict_phase2_retries_total` counts a commit call that failed (a failpoint) and was
 *   retried, by participant, while the transaction still commits.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { VerdictClient } from "../../../client/index.js";
import {
  createAccounts,
  metricValue,
  preparedTransfer,
  raw,
  startApiNode,
  waitFor,
  type Accounts,
  type ApiNode,
} from "../api/harness.js";

let node: ApiNode;
let accounts: Accounts;
let client: VerdictClient;

before(async () => {
  // The first commit call fails once; phase 2 retries it.
  process.env.VERDICT_FAILPOINTS = "before-commit=error@1";
  node = await startApiNode();
  delete process.env.VERDICT_FAILPOINTS;
  accounts = await createAccounts({ "pg-a": [[1, 100]], "pg-b": [[1, 0]] });
  client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
});

after(async () => {
  await node?.stop();
  await accounts?.drop();
});

test("leadership and participant health", async () => {
  assert.equal(await metricValue(node.url, "verdict_leader"), 1);
  assert.equal(
    await metricValue(node.url, "verdict_leadership_changes_total", { change: "gained" }),
    1,
  );
  assert.equal((await raw(node.url, "GET", "/healthz")).status, 200);
  assert.equal(await metricValue(node.url, "verdict_participant_up", { participant: "pg-a" }), 1);
  assert.equal(await metricValue(node.url, "verdict_participant_up", { participant: "pg-b" }), 1);
});

test("in-doubt age and phase-2 retries", async () => {
  assert.equal(await metricValue(node.url, "verdict_in_doubt_oldest_age_seconds"), 0);
  const prepared = await preparedTransfer(client, accounts, 1, 5);
  await new Promise((r) => setTimeout(r, 300));
  const age = await metricValue(node.url, "verdict_in_doubt_oldest_age_seconds");
  assert.ok(age >= 0.3 && age < 60, `in-doubt age ${age}`);

  // Decided; the failed commit call leaves it `committing` until the retry lands.
  assert.equal((await client.commit(prepared.xid)).state, "committing");
  await waitFor("the retried commit", async () =>
    (await client.status(prepared.xid)).state === "committed" ? true : undefined,
  );
  assert.equal(await accounts.balance("pg-b", 1), 5);
  const retries = await waitFor("a counted phase-2 retry", async () => {
    const n = await metricValue(node.url, "verdict_phase2_retries_total", { op: "commit" });
    return n > 0 ? n : undefined;
  });
  assert.equal(retries, 1);
  await waitFor("nothing in doubt", async () =>
    (await metricValue(node.url, "verdict_in_doubt_oldest_age_seconds")) === 0 ? true : undefined,
  );
});
