/**
 * The live demo (`./start.sh`): coordinator nodes over etcd (3 by default; `--nodes 1` runs
 * one node on its local WAL), a transfer workload, and a dashboard refreshed every second.
 * Keys: k kills the leader (SIGKILL, mid-commit under load), p pauses it (SIGSTOP) past its
 * lease, t asks it to hand leadership over, r restarts what was killed, q stops and prints the
 * final audit. `--script` (or no terminal) kills the leader `--kills` times (3), restarting it
 * each time, then audits: exit 0 only if the audit holds. Node logs: .local/demo/cluster/logs.
 *
 *   npx tsx deploy/demo/live/main.ts [--script] [--nodes 1|3] [--kills N]
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { VerdictClient } from "../../../client/index.js";
import { demoNamespaces, writeClusterConfigs } from "../cluster-config.js";
import { clearScreen, renderFrame } from "./dashboard.js";
import { NodeSet, type ClusterView } from "./nodes.js";
import { Workload } from "./workload.js";
import {
  audit,
  closeWorld,
  countNewEvents,
  expectedMoneyTotal,
  moneyTotal,
  openWorld,
  prepareWorld,
  type Audit,
} from "./world.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const demoDir = join(root, ".local", "demo");
const cliPath = join(root, "dist", "coordinator", "cli", "main.js");
const frameMs = 1_000;
const workers = 4;
const leaderWaitMs = 60_000;
/** A pause longer than the lease (5 s) plus the new leader's takeover. */
const pauseMs = 9_000;
const settleMs = 60_000;
const httpTimeoutMs = 1_000;
const keys = "k kill leader · p pause leader · t hand over leadership · r restart · q quit + audit";

interface Options {
  script: boolean;
  nodes: number;
  kills: number;
}

function parseArgs(argv: readonly string[]): Options {
  const options = { script: !process.stdin.isTTY, nodes: 3, kills: 3 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--script") options.script = true;
    else if (arg === "--nodes") options.nodes = Number(argv[++i]);
    else if (arg === "--kills") options.kills = Number(argv[++i]);
    else throw new Error(`unknown argument ${arg}`);
  }
  if (![1, 3].includes(options.nodes)) throw new Error("--nodes is 1 or 3");
  if (!Number.isInteger(options.kills) || options.kills < 0 || options.kills > 100) {
    throw new Error("--kills is 0 to 100");
  }
  return options;
}

async function tokens(): Promise<{ client: string; admin: string }> {
  if (!existsSync(join(demoDir, "verdict.yaml"))) {
    spawnSync(join(root, "deploy/demo/make-config.sh"), [demoDir], { stdio: "inherit" });
  }
  const config = parse(await readFile(join(demoDir, "verdict.yaml"), "utf8")) as {
    tokens: { role: string; secret: string }[];
  };
  const secret = (role: string) => config.tokens.find((t) => t.role === role)?.secret ?? "";
  return { client: secret("client"), admin: secret("admin") };
}

async function getText(url: string, token: string): Promise<string | undefined> {
  try {
    const res = await fetch(url, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(httpTimeoutMs),
    });
    return res.ok ? await res.text() : undefined;
  } catch {
    return undefined;
  }
}

class LiveDemo {
  private failovers = 0;
  private lastLeader: string | undefined;
  private view: ClusterView = { leaderId: undefined, term: undefined, roles: new Map() };
  private readonly events: string[] = [];
  private clusterId = "";

  constructor(
    readonly nodes: NodeSet,
    private readonly workload: Workload,
    private readonly world: Awaited<ReturnType<typeof openWorld>>,
    private readonly adminToken: string,
    private readonly title: string,
  ) {}

  note(text: string): void {
    this.events.push(`${new Date().toISOString().slice(11, 19)} ${text}`);
    if (this.events.length > 100) this.events.shift();
  }

  leaderUrl(): string | undefined {
    return this.nodes.nodes.find((n) => n.id === this.view.leaderId)?.url;
  }

  async refresh(): Promise<void> {
    this.view = await this.nodes.view();
    const leader = this.view.leaderId;
    if (leader !== undefined && this.lastLeader !== undefined && leader !== this.lastLeader) {
      this.failovers++;
      this.note(`failover: ${leader} leads (term ${this.view.term})`);
    }
    if (leader !== undefined) this.lastLeader = leader;
  }

  async waitForLeader(exceptId?: string): Promise<string> {
    const deadline = Date.now() + leaderWaitMs;
    while (Date.now() < deadline) {
      await this.refresh();
      const leader = this.view.leaderId;
      if (leader !== undefined && leader !== exceptId) return leader;
      await sleep(250);
    }
    throw new Error(`no leader within ${leaderWaitMs} ms`);
  }

  async learnClusterId(): Promise<void> {
    const url = this.leaderUrl();
    const text = url && (await getText(`${url}/admin/v1/cluster`, this.adminToken));
    this.clusterId = text ? (JSON.parse(text) as { clusterId: string }).clusterId : "";
  }

  async frame(color = true): Promise<string[]> {
    await this.refresh();
    const url = this.leaderUrl();
    const metrics = url ? await getText(`${url}/metrics`, this.adminToken) : undefined;
    const inDoubt = /^verdict_transactions_in_doubt (\d+)/m.exec(metrics ?? "")?.[1];
    return renderFrame({
      title: this.title,
      stats: this.workload.stats(),
      view: this.view,
      nodeIds: this.nodes.nodes.map((n) => n.id),
      inDoubt: inDoubt === undefined ? undefined : Number(inDoubt),
      failovers: this.failovers,
      moneyTotal: await moneyTotal(this.world).catch(() => undefined),
      moneyExpected: expectedMoneyTotal,
      kafkaEvents: await countNewEvents(this.world).catch(() => undefined),
      events: this.events,
      keys,
      color,
    });
  }

  killLeader(): string | undefined {
    const leader = this.view.leaderId;
    if (leader === undefined) return undefined;
    this.nodes.kill(leader);
    this.note(`SIGKILL ${leader} (the leader), transfers in flight`);
    return leader;
  }

  pauseLeader(): void {
    const leader = this.view.leaderId;
    if (leader === undefined) return;
    this.nodes.pause(leader, pauseMs);
    this.note(`SIGSTOP ${leader} (the leader) for ${pauseMs / 1000} s, past its lease`);
  }

  async handOver(): Promise<void> {
    const url = this.leaderUrl();
    if (url === undefined) return;
    // Resigns once its in-flight appends finish; any live node may take over.
    const res = await fetch(`${url}/admin/v1/cluster/leadership`, {
      method: "POST",
      headers: { authorization: `Bearer ${this.adminToken}`, "content-type": "application/json" },
      body: "{}",
      signal: AbortSignal.timeout(5_000),
    }).catch(() => undefined);
    const leader = this.view.leaderId;
    this.note(res?.ok ? `${leader} hands leadership over` : `hand-over refused (${res?.status})`);
  }

  restart(): void {
    const restarted = this.nodes.restartKilled();
    if (restarted.length > 0) this.note(`restarted ${restarted.join(", ")}`);
  }

  /** Audits until it holds (phase 2 may still be finishing) or the bound passes. */
  async finalAudit(): Promise<Audit> {
    const deadline = Date.now() + settleMs;
    for (;;) {
      const result = await audit(
        this.world,
        this.workload.told,
        this.clusterId,
        demoNamespaces(this.nodes.nodes.length).redisNamespace,
      );
      if (result.ok || Date.now() > deadline) return result;
      await sleep(2_000);
    }
  }
}

function printAudit(a: Audit): void {
  console.log(`\nfinal audit: ${a.transfers} transfers, ${a.applied} applied everywhere`);
  console.log(
    `  money total ${a.moneyTotal} (expected ${expectedMoneyTotal}), Kafka events ${a.kafkaEvents}`,
  );
  for (const c of a.checks)
    console.log(`  ${c.ok ? "ok  " : "FAIL"} ${c.name}${c.detail ? `: ${c.detail}` : ""}`);
  console.log(a.ok ? "the audit holds" : "THE AUDIT FAILS");
}

async function scripted(demo: LiveDemo, kills: number): Promise<void> {
  await sleep(4_000);
  for (let k = 1; k <= kills; k++) {
    await demo.waitForLeader();
    const killed = demo.killLeader();
    console.log(`kill ${k}/${kills}: ${killed ?? "no leader"}`);
    if (killed !== undefined && demo.nodes.nodes.length > 1) {
      console.log(`  ${await demo.waitForLeader(killed)} leads`);
    }
    await sleep(2_000);
    demo.restart();
    await demo.waitForLeader();
    await sleep(4_000);
    console.log((await demo.frame(false)).slice(2, 7).join("\n"));
  }
}

async function interactive(demo: LiveDemo): Promise<void> {
  const { stdin, stdout } = process;
  stdin.setRawMode(true);
  stdin.resume();
  let quit: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (quit = resolve));
  stdin.on("data", (data: Buffer) => {
    const key = data.toString();
    if (key === "k") demo.killLeader();
    else if (key === "p") demo.pauseLeader();
    else if (key === "t") void demo.handOver();
    else if (key === "r") demo.restart();
    else if (key === "q" || key === "\u0003") quit();
  });
  const timer = setInterval(() => {
    void demo.frame().then((lines) => stdout.write(clearScreen + lines.join("\n") + "\n"));
  }, frameMs);
  await done;
  clearInterval(timer);
  stdin.setRawMode(false);
  stdin.pause();
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const { client, admin } = await tokens();
  const nodeList = await writeClusterConfigs(demoDir, options.nodes);
  const logDir = join(demoDir, "cluster", "logs");
  mkdirSync(logDir, { recursive: true });
  const nodes = new NodeSet(nodeList, cliPath, logDir, admin);
  const world = await openWorld(Date.now().toString(36));
  await prepareWorld(world);
  const sdk = new VerdictClient({ baseUrls: nodeList.map((n) => n.url), token: client });
  const workload = new Workload(sdk, world, workers);
  const title =
    options.nodes > 1
      ? `Verdict live demo: ${options.nodes} nodes on etcd; transfers across PostgreSQL ×2, Redis, Kafka`
      : "Verdict live demo: 1 node on its local WAL; transfers across PostgreSQL ×2, Redis, Kafka";
  const demo = new LiveDemo(nodes, workload, world, admin, title);
  try {
    for (const n of nodeList) nodes.start(n.id);
    console.log(`nodes starting; logs in ${logDir}`);
    console.log(`${await demo.waitForLeader()} leads`);
    await demo.learnClusterId();
    workload.start();
    if (options.script) await scripted(demo, options.kills);
    else await interactive(demo);
    await workload.stop();
    demo.restart();
    const result = await demo.finalAudit();
    printAudit(result);
    return result.ok ? 0 : 1;
  } finally {
    await workload.stop();
    await nodes.stopAll();
    await closeWorld(world);
  }
}

process.exitCode = await main().catch((err: unknown) => {
  console.error(err);
  return 1;
});
