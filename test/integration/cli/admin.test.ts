/**
 * `verdict admin` (the compiled CLI, as a child process) against a real node on the real
 * PostgreSQL:
 * - list, show, participants and cluster print what the REST endpoints answer (the text
 *   names every transaction with its state, decision and in-doubt flag, in the server's
 *   order; `--json` is the REST body itself); paging prints the next cursor and follows it;
 * - an unknown xid exits 1 with `error transaction-not-found`, a wrong token 1 with
 *   `error unauthorized`; bad usage exits 2 with the usage; a missing token variable says
 *   which variable, and `--token` is refused; an unreachable or silent server exits 3.
 */
import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { raw } from "../api/harness.js";
import { runCli, shown } from "./cli.js";
import { startCliNode, type CliNode } from "./fixture.js";

let n: CliNode;
let done: string;
let held: string;

interface Summary {
  xid: string;
  state: string;
  decision?: string;
  inDoubt: boolean;
}

const admin = (args: string[], env: Record<string, string> = n.adminEnv) =>
  runCli(["admin", ...args], env);

async function rest(path: string): Promise<unknown> {
  const answer = await raw(n.node.url, "GET", path, { token: n.cluster.adminToken });
  assert.equal(answer.status, 200, answer.text);
  return answer.body;
}

/** The line of a table that names `xid`. */
function lineOf(stdout: string, xid: string): string {
  const line = stdout.split("\n").find((l) => l.startsWith(`${xid} `));
  assert.ok(line, `no line for ${xid} in:\n${stdout}`);
  return line;
}

describe("verdict admin", () => {
  before(async () => {
    n = await startCliNode();
    done = await n.transfer();
    await n.client.commit(done);
    held = await n.transfer();
    await n.client.prepare(held);
  });
  after(async () => {
    if (held) await n?.client.abort(held);
    await n?.destroy();
  });

  test("list prints every transaction the endpoint lists, in its order, in-doubt first", async () => {
    const r = await admin(["list"]);
    assert.equal(r.code, 0, shown(r));
    const body = (await rest("/admin/v1/transactions")) as { transactions: Summary[] };
    const lines = r.stdout.trimEnd().split("\n");
    assert.match(
      lines[0] ?? "",
      /^XID\s+STATE\s+DECISION\s+HEURISTIC\s+IN-DOUBT\s+AGE\s+BRANCHES$/,
    );
    assert.deepEqual(
      lines.slice(1).map((l) => l.split(/\s+/)[0]),
      body.transactions.map((t) => t.xid),
    );
    assert.equal(body.transactions[0]?.xid, held);
    for (const t of body.transactions) {
      const cells = lineOf(r.stdout, t.xid).split(/\s+/);
      assert.equal(cells[1], t.state);
      assert.equal(cells[2], t.decision ?? "-");
      assert.equal(cells[4], t.inDoubt ? "yes" : "no");
    }
    assert.match(lineOf(r.stdout, held), /prepared\s+-\s+-\s+yes\s+\d+s\s+2 prepared$/);
    assert.match(lineOf(r.stdout, done), /committed\s+commit\s+-\s+no\s+\d+s\s+2 committed$/);
    assert.doesNotMatch(r.stdout, /next cursor/);
  });

  test("list --json is the endpoint's body; --in-doubt and --state filter", async () => {
    const r = await admin(["list", "--json"]);
    assert.equal(r.code, 0, shown(r));
    assert.deepEqual(JSON.parse(r.stdout), await rest("/admin/v1/transactions"));
    const inDoubt = await admin(["--json", "list", "--in-doubt"]);
    assert.equal(inDoubt.code, 0, shown(inDoubt));
    const xids = (JSON.parse(inDoubt.stdout) as { transactions: Summary[] }).transactions.map(
      (t) => t.xid,
    );
    assert.deepEqual(xids, [held]);
    const committed = await admin(["list", "--state", "committed"]);
    assert.equal(committed.code, 0, shown(committed));
    assert.ok(
      committed.stdout.includes(done) && !committed.stdout.includes(held),
      committed.stdout,
    );
  });

  test("list --limit 1 prints the next cursor, and --cursor follows it", async () => {
    const first = await admin(["list", "--limit", "1"]);
    assert.equal(first.code, 0, shown(first));
    const cursor = /^next cursor: (\S+)$/m.exec(first.stdout)?.[1];
    assert.ok(cursor, first.stdout);
    lineOf(first.stdout, held);
    const second = await admin(["list", "--limit", "1", "--cursor", cursor]);
    assert.equal(second.code, 0, shown(second));
    lineOf(second.stdout, done);
    assert.ok(!second.stdout.includes(held));
  });

  test("show prints the header, every branch and the whole history", async () => {
    const r = await admin(["show", done]);
    assert.equal(r.code, 0, shown(r));
    const view = (await rest(`/admin/v1/transactions/${done}`)) as {
      principal: string;
      branches: {
        branch: number;
        participant: string;
        state: string;
        vote?: string;
        branchId: string;
      }[];
      history: { index: number; entry: string }[];
    };
    assert.match(r.stdout, new RegExp(`^xid\\s+${done}$`, "m"));
    assert.match(r.stdout, /^state\s+committed \(decision commit\)$/m);
    assert.match(r.stdout, /^in doubt\s+no$/m);
    assert.match(r.stdout, new RegExp(`^principal\\s+${view.principal}$`, "m"));
    for (const b of view.branches) {
      assert.match(
        r.stdout,
        new RegExp(
          `^  ${b.branch}\\s+${b.participant}\\s+postgres\\s+${b.state}\\s+${b.vote ?? "-"}\\s+\\d+\\s+-\\s+${b.branchId}$`,
          "m",
        ),
      );
    }
    assert.ok(view.history.length >= 3);
    for (const h of view.history) {
      assert.match(r.stdout, new RegExp(`^  ${h.index}\\s+\\d+\\s+\\S+\\s+${h.entry}\\b`, "m"));
    }
    const json = await admin(["show", held, "--json"]);
    assert.equal(json.code, 0, shown(json));
    // The participants' live views differ from read to read (read time, lock age): left out.
    const own = (body: unknown) => ({ ...(body as object), participants: undefined });
    assert.deepEqual(
      own(JSON.parse(json.stdout)),
      own(await rest(`/admin/v1/transactions/${held}`)),
    );
  });

  test("participants and cluster print what the endpoints answer", async () => {
    const p = await admin(["participants"]);
    assert.equal(p.code, 0, shown(p));
    assert.match(p.stdout, /^pg-a\s+postgres\s+ok\s+1\s+/m);
    assert.match(p.stdout, /^pg-b\s+postgres\s+ok\s+1\s+/m);
    const body = (await rest("/admin/v1/participants")) as {
      participants: { preparedBranches: string[] }[];
    };
    for (const id of body.participants.flatMap((x) => x.preparedBranches)) {
      assert.ok(p.stdout.includes(`  prepared: ${id}`), `${id} in:\n${p.stdout}`);
    }
    const c = await admin(["cluster"]);
    assert.equal(c.code, 0, shown(c));
    const cluster = (await rest("/admin/v1/cluster")) as {
      clusterId: string;
      nodeId: string;
      commitIndex: number;
    };
    assert.match(c.stdout, new RegExp(`^cluster\\s+${cluster.clusterId}$`, "m"));
    assert.match(c.stdout, new RegExp(`^leader\\s+${cluster.nodeId}\\b`, "m"));
    assert.match(c.stdout, new RegExp(`^  ${cluster.nodeId}\\s+leader\\s+yes\\s+http`, "m"));
    const cj = await admin(["cluster", "--json"]);
    assert.deepEqual(JSON.parse(cj.stdout), await rest("/admin/v1/cluster"));
  });

  test("an unknown xid exits 1 with the server's error; a wrong token too", async () => {
    const r = await admin(["show", "no-such-xid"]);
    assert.equal(r.code, 1, shown(r));
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^error transaction-not-found: .+\n$/);
    const wrong = await admin(["list"], {
      ...n.adminEnv,
      VERDICT_ADMIN_TOKEN: "not-the-token-at-all",
    });
    assert.equal(wrong.code, 1, shown(wrong));
    assert.match(wrong.stderr, /^error unauthorized: /);
    const client = await admin(["list"], {
      ...n.adminEnv,
      VERDICT_ADMIN_TOKEN: n.cluster.clientToken,
    });
    assert.equal(client.code, 1, shown(client));
    assert.match(client.stderr, /^error forbidden: /);
  });

  test("bad usage exits 2 with the usage text and sends nothing", async () => {
    const cases: [string[], RegExp][] = [
      [["frobnicate"], /unknown admin command "frobnicate"/],
      [["show"], /admin show takes one XID/],
      [["show", "a:b"], /is not an xid/],
      [["list", "--limit", "0"], /--limit must be an integer from 1 to 1000/],
      [["list", "--state", "sleeping"], /--state must be one of active, /],
      [["list", "--reason", "x"], /--reason is not a flag of admin list/],
      [["list", "--bogus"], /Unknown option '--bogus'/],
      [["cluster", "extra"], /takes no arguments/],
      [["list", "--timeout-ms", "soon"], /--timeout-ms must be an integer/],
      [["list", "--url", "ftp://x"], /--url must be http/],
    ];
    for (const [args, message] of cases) {
      const r = await admin(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${shown(r)}`);
      assert.match(r.stderr, message, args.join(" "));
      assert.match(r.stderr, /usage: verdict admin/);
      assert.equal(r.stdout, "");
    }
    const start = await runCli(["start"]);
    assert.equal(start.code, 2, shown(start));
    assert.match(
      start.stderr,
      /--config FILE is required[\s\S]*usage: verdict start --config FILE/,
    );
    const top = await runCli(["nonsense"]);
    assert.equal(top.code, 2, shown(top));
    assert.match(top.stderr, /unknown command nonsense[\s\S]*usage: verdict <command>/);
  });

  test("start: a node that cannot listen exits 1 with the error instead of hanging", async () => {
    const config = JSON.parse(await readFile(n.cluster.configPath, "utf8")) as {
      node: Record<string, unknown>;
    };
    const dataDir = await mkdtemp(join(tmpdir(), "verdict-busy-port-"));
    try {
      config.node = {
        ...config.node,
        id: "busy-port",
        dataDir,
        port: Number(new URL(n.node.url).port),
      };
      const configPath = join(dataDir, "verdict.json");
      await writeFile(configPath, JSON.stringify(config));
      // The same cluster, so the participants accept it and the failure is the port's.
      await copyFile(join(n.cluster.dataDir, "cluster-id"), join(dataDir, "cluster-id"));
      const r = await runCli(["start", "--config", configPath]);
      assert.equal(r.code, 1, shown(r));
      assert.match(r.stderr, /start failed: .*EADDRINUSE/);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test("--help prints each command's usage and exits 0", async () => {
    const cases: [string[], string][] = [
      [["--help"], "usage: verdict <command>"],
      [["start", "--help"], "usage: verdict start --config FILE"],
      [["admin", "--help"], "usage: verdict admin"],
      [["admin"], "usage: verdict admin"],
      [["log", "--help"], "usage: verdict log dump"],
    ];
    for (const [args, heading] of cases) {
      const r = await runCli(args);
      assert.equal(r.code, 0, `${args.join(" ")}: ${shown(r)}`);
      assert.ok(r.stdout.startsWith(heading), `${args.join(" ")}: ${r.stdout}`);
    }
  });

  test("the token comes only from the environment: missing says which variable; --token is refused", async () => {
    const missing = await admin(["list"], { VERDICT_URL: n.node.url });
    assert.equal(missing.code, 2, shown(missing));
    assert.match(
      missing.stderr,
      /no admin token: environment variable VERDICT_ADMIN_TOKEN is unset/,
    );
    const named = await admin(["list", "--token-env", "OPS_TOKEN"], { VERDICT_URL: n.node.url });
    assert.equal(named.code, 2, shown(named));
    assert.match(named.stderr, /environment variable OPS_TOKEN is unset/);
    const other = await admin(["list", "--token-env", "OPS_TOKEN"], {
      VERDICT_URL: n.node.url,
      OPS_TOKEN: n.cluster.adminToken,
    });
    assert.equal(other.code, 0, shown(other));
    lineOf(other.stdout, held);
    const flag = await admin(["list", "--token", n.cluster.adminToken]);
    assert.equal(flag.code, 2, shown(flag));
    assert.match(flag.stderr, /--token is not accepted/);
    assert.ok(!flag.stderr.includes(n.cluster.adminToken), "the secret is not echoed");
  });

  test("--url takes precedence over VERDICT_URL", async () => {
    const r = await admin(["cluster", "--url", n.node.url], {
      VERDICT_URL: "http://127.0.0.1:1",
      VERDICT_ADMIN_TOKEN: n.cluster.adminToken,
    });
    assert.equal(r.code, 0, shown(r));
  });

  test("an unreachable server exits 3; a silent one exits 3 after --timeout-ms", async () => {
    const closed = await freePort();
    const r = await admin(["list"], {
      VERDICT_URL: `http://127.0.0.1:${closed}`,
      VERDICT_ADMIN_TOKEN: "x".repeat(24),
    });
    assert.equal(r.code, 3, shown(r));
    assert.match(
      r.stderr,
      /^cannot reach http:\/\/127\.0\.0\.1:\d+\/admin\/v1\/transactions: .*ECONNREFUSED/,
    );

    const silent: Server = createServer(() => {
      // Never answers: the CLI's timeout must end the wait.
    });
    await new Promise<void>((done) => silent.listen(0, "127.0.0.1", done));
    try {
      const port = (silent.address() as AddressInfo).port;
      const started = Date.now();
      const t = await admin(["cluster", "--timeout-ms", "300"], {
        VERDICT_URL: `http://127.0.0.1:${port}`,
        VERDICT_ADMIN_TOKEN: "x".repeat(24),
      });
      assert.equal(t.code, 3, shown(t));
      assert.match(t.stderr, /no answer within 300 ms/);
      assert.ok(Date.now() - started < 15_000, "the timeout ended the wait");
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((done) => silent.close(() => done()));
    }
  });
});

/** A loopback port with nothing listening on it (bound, then released). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((done) => s.listen(0, "127.0.0.1", done));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((done) => s.close(() => done()));
  return port;
}
