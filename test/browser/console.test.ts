/**
 * The web console in a real browser (Debian's chromium) against a real node with real
 * participants (docs/console.md):
 * - the runbook's worked examples, through the console: a DBA rolled back a prepared branch
 *   (Verdict says prepared, PostgreSQL's own view says absent; the console's commit is refused
 *   with the API's own error; the heuristic case links to its runbook section; forget leaves an
 *   audit record); a participant down during phase 2 (attempts and last error beside the
 *   participant's failing view; the page turns committed by itself, through the event stream,
 *   with no reload, once Redis is back); an orphan prepared branch (flagged "not in the log",
 *   rolled back by "Run recovery now");
 * - hostile labels and keys (`<img onerror>`, `</script>`) are shown as text and never run;
 * - an operator walkthrough from the overview to a resolved in-doubt transaction with its audit
 *   record, counting clicks and page loads (written to docs/console/walkthrough.json);
 * - screenshots of every page are written to docs/console/.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import type { Page } from "playwright-core";
import { pgStatements, redisOps, sql } from "../../client/index.js";
import { dbaRollback, preparedTransfer, waitFor } from "../integration/api/harness.js";
import { services } from "../support/services.js";
import { redisName, screenshotDir, startBrowserFixture, type BrowserFixture } from "./fixture.js";

let f: BrowserFixture;

/** The row of branch `n` in the transaction page's branch table. */
const branchRow = (page: Page, n: number) =>
  page.locator("table tbody tr").filter({ has: page.locator(`td:first-child:text-is("${n}")`) });

describe("web console", () => {
  before(async () => {
    f = await startBrowserFixture();
  });
  after(async () => {
    await f?.close();
  });

  test("a DBA rolled back a prepared branch: both views side by side, refusal, heuristic, forget", async () => {
    const t = await preparedTransfer(f.client, f.accounts, 1, 7);
    const op = await f.operator();
    const { page } = op;
    const gid = `${f.node.node.clusterId}:${t.xid}:1`;
    await dbaRollback("pg-a", gid);

    await page.goto(`${f.node.url}/console#/tx/${t.xid}`);
    const row1 = branchRow(page, 1);
    await row1.getByText("holds").waitFor();
    assert.match(await row1.innerText(), /prepared[\s\S]*holds\s+absent/);
    assert.match(await branchRow(page, 2).innerText(), /holds\s+prepared[\s\S]*owner/);

    // The console's commit is refused with the API's own error: branch 1 is not prepared.
    await page.locator("#action").selectOption("commit");
    await page.locator("#reason").fill("INC-1 try commit");
    await page.getByRole("button", { name: "Review…" }).click();
    await page.locator("#confirm-yes").click();
    const refused = await page.locator("#refused").innerText();
    assert.match(refused, /^Refused: [a-z-]+: /);

    // The client commits: branch 2 commits, branch 1 is a heuristic rollback.
    await f.client.commit(t.xid).catch(() => undefined);
    await waitFor("the heuristic outcome", async () => {
      await page.goto(`${f.node.url}/console#/heuristics`);
      await page.locator("main h1").waitFor();
      return (await page.locator("main").innerText()).includes(t.xid) ? true : undefined;
    });
    const caseRow = page.locator("tbody tr").filter({ hasText: t.xid });
    assert.match(await caseRow.innerText(), /heuristic-mixed/);
    await op.shot("heuristics");
    await caseRow.getByRole("link", { name: "a-dba-rolled-back-a-prepared-branch" }).click();
    await page.getByRole("heading", { name: "A DBA rolled back a prepared branch" }).waitFor();
    assert.match(await page.locator("main pre").innerText(), /ROLLBACK PREPARED/);
    await op.shot("runbook");

    await page.goto(`${f.node.url}/console#/tx/${t.xid}`);
    await page.locator("#resolve").waitFor();
    assert.match(await page.locator('[data-field="heuristic"]').innerText(), /heuristic-mixed/);
    await op.shot("transaction-heuristic");
    await page.locator("#action").selectOption("forget");
    await page.locator("#reason").fill("INC-1043: pg-a debit re-applied by hand");
    await page.getByRole("button", { name: "Review…" }).click();
    assert.match(
      await page.locator("#confirm").innerText(),
      new RegExp(`forget transaction ${t.xid}`),
    );
    await page.locator("#confirm-yes").click();
    assert.match(await page.locator("#resolved").innerText(), /forget accepted: .* is forgotten/);
    await page.reload();
    assert.match(await page.locator("main").innerText(), /transaction-not-found/);
    assert.deepEqual(op.incidents, []);
  });

  test("a participant down during phase 2: attempts, last error, failing view; live recovery", async (t) => {
    const { xid } = await f.client.begin({ timeoutMs: 60_000 });
    await f.client.enlist(
      xid,
      pgStatements("pg-a", [
        sql(`update ${f.accounts.table} set balance = balance - 3 where id = 1`, [], {
          expectRows: 1,
        }),
      ]),
    );
    await f.client.enlist(xid, redisOps(redisName, [{ op: "incrby", key: `acct:${xid}`, by: 3 }]));
    assert.equal((await f.client.prepare(xid)).state, "prepared");
    await f.redis.kill();
    let up = false;
    const restarted = async () => {
      if (!up) await f.redis.restart();
      up = true;
    };
    t.after(restarted);
    const committing = await f.client.commit(xid);
    assert.equal(committing.state, "committing");

    const op = await f.operator();
    const { page } = op;
    await page.goto(`${f.node.url}/console#/tx/${xid}`);
    await waitFor(
      "a failed phase-2 attempt shows",
      async () => {
        await page.reload();
        const text = await branchRow(page, 2)
          .innerText()
          .catch(() => "");
        return /committing/.test(text) && !/\t0\t/.test(text) && /unavailable|connect/i.test(text)
          ? text
          : undefined;
      },
      20_000,
    );
    assert.match(await branchRow(page, 1).innerText(), /committed[\s\S]*holds\s+committed/);
    await op.shot("transaction-participant-down");

    const loads = op.counts.pageLoads;
    await restarted();
    await page
      .locator('[data-field="state"]')
      .filter({ hasText: /^committed/ })
      .waitFor({
        timeout: 30_000,
      });
    assert.equal(op.counts.pageLoads, loads, "the page updated itself, without a reload");
    assert.match(await branchRow(page, 2).innerText(), /committed[\s\S]*holds\s+committed/);
    assert.deepEqual(op.incidents, []);
  });

  test("an orphan prepared branch: flagged on the overview, rolled back by a recovery run", async () => {
    const orphan = `${f.node.node.clusterId}:0orphan${Date.now()}:1`;
    const c = new pg.Client({ connectionString: services.pgUrlA });
    await c.connect();
    try {
      await c.query("begin");
      await c.query(`insert into ${f.accounts.table} values ($1, 0)`, [Date.now() % 1_000_000]);
      await c.query(`prepare transaction '${orphan}'`);
      const op = await f.operator();
      const { page } = op;
      const row = page.locator("tbody tr").filter({ hasText: orphan });
      await row.waitFor();
      assert.match(await row.innerText(), /orphan: not in the log/);
      await op.shot("overview-orphan");
      await page.locator("#run-recovery").click();
      await page.locator("#recovery-result").filter({ hasText: /found/ }).waitFor();
      assert.match(await page.locator("#recovery-result").innerText(), /found [1-9]/);
      await row.waitFor({ state: "detached" });
      const { rows } = await c.query("select 1 from pg_prepared_xacts where gid = $1", [orphan]);
      assert.equal(rows.length, 0, "PostgreSQL no longer holds it");
      assert.deepEqual(op.incidents, []);
    } finally {
      await c.query(`rollback prepared '${orphan}'`).catch(() => undefined);
      await c.end();
    }
  });

  test("hostile labels and keys are shown as text and never run", async () => {
    const img = `<img src=x onerror="document.title='pwned'">`;
    const script = `</script><script>document.title='pwned'</script>`;
    const { xid } = await f.client.begin({
      timeoutMs: 60_000,
      labels: { note: img, tail: script },
    });
    await f.client.enlist(
      xid,
      redisOps(redisName, [{ op: "set", key: `k:${img}`, value: script }]),
    );
    await f.client.prepare(xid);
    const op = await f.operator();
    const { page } = op;
    await page.goto(`${f.node.url}/console#/transactions?label=note`);
    await page.locator("#tx-list tbody tr").filter({ hasText: xid }).waitFor();
    assert.match(await page.locator("main").innerText(), /note=<img src=x onerror=/);
    await op.shot("transactions");
    await page.goto(`${f.node.url}/console#/tx/${xid}`);
    await branchRow(page, 1).getByText("locks held").waitFor();
    const text = await page.locator("main").innerText();
    assert.ok(text.includes(`tail=${script}`), "the label is shown literally");
    assert.ok(text.includes(`k:${img}`), "the staged key is shown literally");
    assert.equal(await page.locator("main img, main script").count(), 0, "no element was made");
    assert.notEqual(await page.title(), "pwned");
    assert.deepEqual(op.incidents, []);
    await f.client.abort(xid);
  });

  test("walkthrough: from the overview to a resolved in-doubt transaction and its audit record", async () => {
    const t = await preparedTransfer(f.client, f.accounts, 1, 1); // its client then vanished
    const op = await f.operator();
    const { page } = op;
    await page.locator('[data-count="in-doubt"]').waitFor();
    await op.shot("overview");
    await op.click(page.locator("#in-doubt").getByRole("link", { name: t.xid }));
    await page.locator("#resolve").waitFor();
    await op.shot("transaction");
    await op.click(page.locator("#action"));
    await page.locator("#action").selectOption("abort");
    await page.locator("#reason").fill("INC-7: client gone, order cancelled upstream");
    await op.click(page.getByRole("button", { name: "Review…" }));
    await op.click(page.locator("#confirm-yes"));
    const resolved = await page.locator("#resolved").innerText();
    assert.match(resolved, /abort accepted: the transaction is abort(ing|ed)/);
    assert.match(resolved, /Audit record #\d+ .* by admin: .*INC-7/);
    const figures = { clicks: op.counts.clicks, pageLoads: op.counts.pageLoads, fieldsTyped: 2 };
    // Token, in-doubt link, action, Review, Confirm: five clicks and the one page load.
    assert.deepEqual(figures, { clicks: 5, pageLoads: 1, fieldsTyped: 2 });
    await writeFile(`${screenshotDir}walkthrough.json`, `${JSON.stringify(figures, null, 2)}\n`);
    const login = await f.browser.newPage();
    await login.goto(`${f.node.url}/console`);
    await login.locator("#token").waitFor();
    await login.screenshot({ path: `${screenshotDir}login.png` });
    await login.close();
  });

  test("the console's pages carry a strict CSP, and the event stream needs an admin token", async () => {
    const page = await fetch(`${f.node.url}/console`);
    const csp = page.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /require-trusted-types-for 'script'/);
    assert.equal(page.headers.get("set-cookie"), null);
    const anonymous = await fetch(`${f.node.url}/admin/v1/events`);
    assert.equal(anonymous.status, 401);
    const client = await fetch(`${f.node.url}/admin/v1/events`, {
      headers: { authorization: `Bearer ${f.node.clientToken}` },
    });
    assert.equal(client.status, 403);
  });
});
