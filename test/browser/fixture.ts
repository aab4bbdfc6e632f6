/**
 * Shared set-up of the browser tests: a real node in this process (pg-a and pg-b on the shared
 * PostgreSQL, a Redis participant on a throwaway redis-server a test may kill), an account
 * table, the SDK as the application, and Debian's chromium driven by playwright-core (the
 * system binary: nothing is downloaded). Pages are counted (full loads) and so are the
 * operator's clicks, for the walkthrough's figures. Screenshots go to docs/console/.
 */
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Locator, type Page } from "playwright-core";
import { VerdictClient } from "../../client/index.js";
import {
  createAccounts,
  startApiNode,
  type Accounts,
  type ApiNode,
} from "../integration/api/harness.js";
import { startThrowawayRedis, type ThrowawayRedis } from "../support/throwaway-redis.js";

export const redisName = "redis-main";
const chromiumPath = process.env.VERDICT_CHROMIUM ?? "/usr/bin/chromium";
export const screenshotDir = fileURLToPath(new URL("../../docs/console/", import.meta.url));

export interface BrowserFixture {
  readonly node: ApiNode;
  readonly client: VerdictClient;
  readonly accounts: Accounts;
  readonly redis: ThrowawayRedis;
  readonly browser: Browser;
  /** A new tab on /console with the admin token given (one page load). */
  operator(): Promise<Operator>;
  close(): Promise<void>;
}

/** One operator's tab, counting what they do. */
export interface Operator {
  readonly page: Page;
  readonly counts: { clicks: number; pageLoads: number };
  click(target: Locator): Promise<void>;
  /** Scripts the page ran that it should not have (a hostile value executed). */
  readonly incidents: string[];
  shot(name: string): Promise<void>;
}

export async function startBrowserFixture(): Promise<BrowserFixture> {
  const redis = await startThrowawayRedis();
  const node = await startApiNode({
    protocol: {
      commitWaitMs: 1_000,
      // Orphans wait for the operator's "Run recovery now" in these tests, then go at once.
      recoveryIntervalMs: 3_600_000,
      recoveryVerifyMs: 0,
    },
    participants: [
      {
        name: redisName,
        kind: "redis",
        url: redis.url,
        connectTimeoutMs: 1_000,
        commandTimeoutMs: 2_000,
        reconnectDelayMsMax: 200,
      },
    ],
  });
  const accounts = await createAccounts({ "pg-a": [[1, 1_000]], "pg-b": [[1, 1_000]] });
  const client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
  await mkdir(screenshotDir, { recursive: true });
  return {
    node,
    client,
    accounts,
    redis,
    browser,
    operator: () => openOperator(browser, node),
    async close() {
      await browser.close();
      await accounts.drop();
      await node.stop();
      await redis.dispose();
    },
  };
}

async function openOperator(browser: Browser, node: ApiNode): Promise<Operator> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const counts = { clicks: 0, pageLoads: 0 };
  const incidents: string[] = [];
  page.on("load", () => (counts.pageLoads += 1));
  page.on("dialog", (d) => {
    incidents.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  // Any request for the hostile image, or a script error, would mean a value became markup.
  page.on("request", (r) => {
    if (!r.url().includes("/console") && !r.url().includes("/admin/")) {
      incidents.push(`request ${r.url()}`);
    }
  });
  page.on("pageerror", (e) => incidents.push(`page error: ${e.message}`));
  const op: Operator = {
    page,
    counts,
    incidents,
    async click(target) {
      counts.clicks += 1;
      await target.click();
    },
    async shot(name) {
      await page.screenshot({ path: `${screenshotDir}${name}.png`, fullPage: true });
    },
  };
  await page.goto(`${node.url}/console`);
  await page.locator("#token").fill(node.adminToken);
  await op.click(page.getByRole("button", { name: "Use token" }));
  await page.locator("#live.on").waitFor();
  assert.deepEqual(await context.cookies(), [], "the console sets no cookie");
  return op;
}
