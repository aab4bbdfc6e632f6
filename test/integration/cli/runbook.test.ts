/**
 * Reproduces the worked examples of docs/runbook.md. Each example (a fenced `console` block
 * after `<!-- example: NAME -->`) is set up here on a real node — a client that vanished after
 * prepare, a DBA's ROLLBACK PREPARED, an orphan — and every `$ verdict …` command in it is run
 * with the compiled CLI. The documented output must appear in the real output, line by line
 * in order, once the parts that differ from run to run (xids, cluster ids, times, ages, log
 * indexes) are masked; `…` in the documentation skips lines. So the runbook cannot drift
 * from what the tool prints. `RUNBOOK_PRINT=1` prints the real outputs, to update the page.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { newXid } from "../../../coordinator/core/ids.js";
import { prepareServiceBranch } from "../../../client/service-branch.js";
import { killLeftovers } from "../../support/process-node.js";
import { services } from "../../support/services.js";
import { runCli } from "./cli.js";
import { startCliNode, type CliNode } from "./fixture.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const page = readFileSync(join(root, "docs/runbook.md"), "utf8");
const print = process.env.RUNBOOK_PRINT === "1";

interface Example {
  readonly name: string;
  readonly commands: readonly { readonly line: string; readonly output: readonly string[] }[];
}

function examples(): Example[] {
  const found: Example[] = [];
  for (const m of page.matchAll(/<!-- example: ([a-z-]+) -->\s*```console\n([\s\S]*?)```/g)) {
    const commands: { line: string; output: string[] }[] = [];
    for (const line of (m[2] ?? "").split("\n")) {
      if (line.startsWith("$ ")) commands.push({ line: line.slice(2), output: [] });
      else if (line.trim() !== "") commands.at(-1)?.output.push(line);
    }
    found.push({ name: m[1] ?? "", commands });
  }
  return found;
}

/** Masks what differs between runs; whitespace runs count as one space. */
function normalize(line: string): string {
  return line
    .replace(/\b[0-9a-z]{9}[0-9a-f]{20}\b/g, "<xid>")
    .replace(/\b[0-9a-f]{20}\b/g, "<cluster>")
    .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, "<time>")
    .replace(/\(\d+(\.\d+)? ?(ms|s|m|h) ago\)/g, "(<ago>)")
    .replace(/\b\d+ ms\b/g, "<n> ms")
    .replace(/\b\d+(ms|s|m|h)\b/g, "<age>")
    .replace(/^\s*\d+\s+\d+\s+<time>/, "<index> <term> <time>")
    .replace(/\s+/g, " ")
    .trim();
}

/** Splits a documented command line into argv: words, and "double-quoted" words. */
function argv(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? "");
}

/** Every documented line, in order, is a line of the real output (`…` skips any number). */
function assertShows(documented: readonly string[], actual: string, what: string): void {
  const lines = actual.split("\n").map(normalize);
  let at = 0;
  for (const d of documented) {
    if (d.trim() === "…") continue;
    const want = normalize(d);
    const found = lines.indexOf(want, at);
    assert.ok(found >= 0, `${what}: documented line not printed:\n  ${want}\nprinted:\n${actual}`);
    at = found + 1;
  }
}

/** An orphan: prepared in pg-a with the cluster's prefix by a service, unknown to the log. */
async function plantOrphan(n: CliNode): Promise<string> {
  const xid = newXid(Date.now(), randomBytes(10).toString("hex"));
  const client = new pg.Client({ connectionString: services.pgUrlA });
  await client.connect();
  try {
    await client.query("begin");
    await client.query(`update ${n.accounts.table} set balance = balance - 1 where id = 1`);
    await prepareServiceBranch(client, `${await n.cluster.clusterId()}:${xid}:1`, {
      schema: n.cluster.schema,
    });
  } finally {
    await client.end();
  }
  return xid;
}

/** A DBA rolls back one branch by hand, outside Verdict. */
async function dbaRollback(n: CliNode, xid: string): Promise<void> {
  const client = new pg.Client({ connectionString: services.pgUrlA });
  await client.connect();
  try {
    await client.query(`rollback prepared '${await n.cluster.clusterId()}:${xid}:1'`);
  } finally {
    await client.end();
  }
}

/** Sets up each example's situation; returns the xid its commands are about. */
const scenarios: Record<string, (n: CliNode) => Promise<string>> = {
  "vanished-client": async (n) => {
    const xid = await n.transfer();
    await n.client.prepare(xid);
    return xid;
  },
  "dba-rollback": async (n) => {
    const xid = await n.transfer();
    await n.client.prepare(xid);
    await dbaRollback(n, xid);
    await n.client.commit(xid).catch(() => undefined);
    return xid;
  },
  orphan: plantOrphan,
};

before(killLeftovers);
after(killLeftovers);

describe("docs/runbook.md worked examples", () => {
  const all = examples();
  test("the page has the examples this test knows, and no others", () => {
    assert.deepEqual(all.map((e) => e.name).sort(), Object.keys(scenarios).sort());
  });
  for (const example of all) {
    test(example.name, async () => {
      const n = await startCliNode();
      try {
        const setUp = scenarios[example.name];
        assert.ok(setUp, `no scenario for ${example.name}`);
        const xid = await setUp(n);
        for (const c of example.commands) {
          const args = argv(c.line)
            .slice(1)
            .map((a) => (normalize(a) === "<xid>" ? xid : a));
          const r = await runCli(args, n.adminEnv);
          const shown = `${r.stdout}${r.stderr}`;
          if (print) process.stdout.write(`$ ${c.line}\n${shown}\n`);
          else assertShows(c.output, shown, `${example.name}: $ ${c.line}`);
        }
      } finally {
        await n.destroy();
      }
    });
  }
});
