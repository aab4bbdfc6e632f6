/**
 * Cluster bench (docs/bench-cluster.md): the same 2-branch PostgreSQL transfer three ways in
 * one run — directly (A0, the floor, as in bench/transfer.ts), through one node on the local
 * log, and through three nodes on etcd — printed as ratios against the floor, with what a
 * transfer costs the log (etcd round trips, entries per append); then crash failover (SIGKILL
 * the leader) and graceful handover, timed until a transfer commits again through the SDK.
 *
 *   npm run -s build && node dist/bench/cluster.js [--clients N] [--duration-s S]
 *       [--failover-trials T] [--handover-trials H] [--lease-ttl-ms MS] …
 *
 * Every node is a process of the compiled CLI (test/support/cluster.ts); the etcd cluster is
 * deploy/local's, under a cluster id of this run's own, whose keys are deleted at the end.
 * Exits 1 if a check fails (money not conserved, something left prepared), 2 for a bad option.
 */
import { randomBytes } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { pathToFileURL } from "node:url";
import { VerdictClient } from "../client/index.js";
import { configSchema } from "../coordinator/config/schema.js";
import { startCluster, etcdEndpoints, type Cluster } from "../test/support/cluster.js";
import {
  createProcessCluster,
  ensureBuilt,
  type ProcessCluster,
} from "../test/support/process-node.js";
import { services } from "../test/support/services.js";
import { parseOptions, runMain, say, UsageError } from "./args.js";
import { leaderChangeTrials, stepNames, stepsText, type Trial } from "./cluster-failover.js";
import { logCostRows, scrapingCounters, type LogCounters } from "./cluster-metrics.js";
import { drain, measure, resultTable, sayRatios, type Measured } from "./measure.js";
import { checkMoney, setUpAccounts, type TransfersRun } from "./money.js";
import { processCpuMs } from "./node-process.js";
import { loadOptions } from "./options.js";
import {
  directTwoPhase,
  verdictOneRequest,
  verdictTwoBranch,
  type Databases,
  type Scenario,
} from "./scenarios.js";
import { formatMs, formatRatio, formatTable, percentile } from "./stats.js";

const spec = {
  ...loadOptions,
  transfer: {
    default: "steps",
    choices: ["steps", "one-request"],
    help: "Verdict's transfer: begin, 2 enlists, commit; or one request (transact)",
  },
  "failover-trials": { default: 20, min: 0, max: 200, help: "SIGKILLs of the leader" },
  "handover-trials": { default: 5, min: 0, max: 100, help: "graceful leadership handovers" },
  "lease-ttl-ms": {
    default: configSchema.shape.log.parse(undefined).leaseTtlMs,
    min: 2000,
    max: 60_000,
    help: "the leader lease's TTL (log.leaseTtlMs, whole seconds)",
  },
} as const;

type Options = ReturnType<typeof parseClusterOptions>;

const command = "node dist/bench/cluster.js";
const protocolDefaults = configSchema.shape.protocol.parse(undefined);
const logDefaults = configSchema.shape.log.parse(undefined);

export function parseClusterOptions(argv: readonly string[]) {
  const options = parseOptions(command, spec, argv);
  if (options["lease-ttl-ms"] % 1000 !== 0)
    throw new UsageError("--lease-ttl-ms must be whole seconds (etcd counts seconds)");
  return options;
}

/** The same node configuration for the local and the etcd deployment, but for the log. */
function nodeSettings(o: Options) {
  return {
    // As many branch connections as the direct scenarios open: like for like.
    participant: { poolSize: o.clients },
    // The product's defaults, not the test helpers' faster ticks.
    protocol: {
      tickMs: protocolDefaults.tickMs,
      phase2BackoffBaseMs: protocolDefaults.phase2BackoffBaseMs,
      phase2BackoffMaxMs: protocolDefaults.phase2BackoffMaxMs,
    },
    // Fresh histograms at every scrape: the breakdown diffs two of them.
    metrics: { cacheMs: 0 },
  };
}

async function main(argv: readonly string[]): Promise<number> {
  const o = parseClusterOptions(argv);
  ensureBuilt();
  // The participants' default lockTimeoutMs (1 s), so the floor's sessions match the nodes' branches.
  const db: Databases = {
    urlA: services.pgUrlA,
    urlB: services.pgUrlB,
    accounts: o.accounts,
    lockTimeoutMs: 1_000,
  };
  const runId = randomBytes(4).toString("hex");
  const stopping = new AbortController();
  process.once("SIGINT", () => {
    say("SIGINT: finishing the running scenario early");
    stopping.abort();
  });
  say(
    `cluster bench ${runId}: ${o.clients} clients, ${o["duration-s"]} s per scenario ` +
      `(+${o["warmup-s"]} s warm-up, ${o["serial-s"]} s with one client), ${o.accounts} ` +
      `accounts, transfer ${o.transfer}, lease TTL ${o["lease-ttl-ms"]} ms; ${cpus().length} ` +
      `cpus, node ${process.version}, load average ${loadText()}`,
  );
  const before = await setUpAccounts(db);
  const run: BenchRun = { o, db, runId, signal: stopping.signal, measured: [], costs: [] };
  const runs: TransfersRun[] = [];
  const verdictLeft: string[] = [];

  for (const clients of clientCounts(o)) {
    const scenario = await directTwoPhase(db, clients, runId);
    await measureOne(run, named(scenario, "A0", clients, o), clients, () => Number.NaN);
  }
  verdictLeft.push(...(await localNode(run)));
  const cluster = await etcdCluster(run, runs);
  verdictLeft.push(...cluster.left);

  printResults(run, cluster.trials);
  const ok = await checkMoney({
    db,
    runId,
    schemas: [],
    runs: [...run.measured, ...runs],
    verdictLeft,
    before,
  });
  say(ok ? "checks passed" : "CHECKS FAILED");
  return ok ? 0 : 1;
}

export interface BenchRun {
  readonly o: Options;
  readonly db: Databases;
  readonly runId: string;
  readonly signal: AbortSignal;
  readonly measured: Measured[];
  /** Per Verdict scenario: the log's counters before and after its measured run. */
  readonly costs: { readonly id: string; readonly rows: string[][] }[];
}

/** One node on the local log: the Verdict scenarios, then drained and removed. */
async function localNode(run: BenchRun): Promise<string[]> {
  const local = await createProcessCluster(nodeSettings(run.o));
  let left: string[] | undefined;
  try {
    const node = await local.start();
    const clusterId = await local.clusterId();
    say(`local node ${node.url}, cluster ${clusterId}`);
    const client = new VerdictClient({ baseUrl: node.url, token: local.clientToken });
    try {
      await verdictScenarios(run, "A.local", client, node.url, () => processCpuMs(node.pid));
    } finally {
      client.close();
    }
    left = await drain(`${clusterId}:`, [run.db.urlA, run.db.urlB]);
  } finally {
    await release(local, left);
  }
  return left;
}

/** Three nodes on etcd: the Verdict scenarios, the leader changes; drained and removed. */
export async function etcdCluster(
  run: BenchRun,
  runs: TransfersRun[],
): Promise<{ left: string[]; trials: Trial[] }> {
  const { o } = run;
  const cluster = await startCluster({
    nodes: 3,
    clusterId: `bench-${run.runId}`,
    log: { leaseTtlMs: o["lease-ttl-ms"], demotionMarginMs: logDefaults.demotionMarginMs },
    ...nodeSettings(o),
  });
  let left: string[] | undefined;
  const trials: Trial[] = [];
  try {
    const { node: leader, term } = await cluster.waitForLeader();
    say(`etcd cluster ${cluster.clusterId} on ${etcdEndpoints.join(",")}: leader ${leader.id}`);
    say(`  (term ${term}), nodes ${cluster.nodes.map((n) => `${n.id} ${n.url}`).join(", ")}`);
    // A client that prefers the leader: the others forward, one hop more.
    const urls = [leader.url, ...cluster.urls().filter((u) => u !== leader.url)];
    const client = new VerdictClient({ baseUrls: urls, token: cluster.clientToken });
    const pid = leader.process?.pid ?? 0;
    try {
      await verdictScenarios(run, "A.etcd", client, leader.url, () => processCpuMs(pid));
    } finally {
      client.close();
    }
    for (const kind of ["crash", "handover"] as const) {
      const count = kind === "crash" ? o["failover-trials"] : o["handover-trials"];
      if (count === 0 || run.signal.aborted) continue;
      say(`${kind} trials (${count}), lease TTL ${o["lease-ttl-ms"]} ms, load ${loadText()}:`);
      const done = await leaderChangeTrials({
        cluster,
        kind,
        trials: count,
        trialTimeoutMs: 4 * o["lease-ttl-ms"] + 20_000,
        scenario: (c) => ({ ...verdictScenario(run, c), id: `A.${kind}` }),
        signal: run.signal,
        say,
      });
      trials.push(...done.trials);
      runs.push(...done.runs);
    }
    left = await drain(`${cluster.clusterId}:`, [run.db.urlA, run.db.urlB]);
  } finally {
    await release(cluster, left);
  }
  return { left, trials };
}

/** The Verdict transfer with `clients` clients, then with one. */
async function verdictScenarios(
  run: BenchRun,
  id: string,
  client: VerdictClient,
  nodeUrl: string,
  nodeCpuMs: () => number,
): Promise<void> {
  for (const clients of clientCounts(run.o)) {
    const scenario = named(verdictScenario(run, client), id, clients, run.o);
    const counters = scrapingCounters(nodeUrl);
    const m = await measureOne(run, scenario, clients, nodeCpuMs, counters.scrape);
    const [start, end] = counters.taken as [LogCounters?, LogCounters?];
    if (m !== undefined && start !== undefined && end !== undefined)
      run.costs.push({ id: scenario.id, rows: logCostRows(start, end, m.result.ok) });
  }
}

function verdictScenario(run: BenchRun, client: VerdictClient): Scenario {
  return run.o.transfer === "steps"
    ? verdictTwoBranch(client, run.db)
    : verdictOneRequest(client, run.db);
}

async function measureOne(
  run: BenchRun,
  scenario: Scenario,
  clients: number,
  nodeCpuMs: () => number,
  scrape?: Parameters<typeof measure>[4],
): Promise<Measured | undefined> {
  if (run.signal.aborted) return undefined;
  const options = {
    ...run.o,
    clients,
    "duration-s": clients === 1 ? run.o["serial-s"] : run.o["duration-s"],
  };
  try {
    const m = await measure(scenario, options, nodeCpuMs, run.signal, scrape);
    run.measured.push(m);
    return m;
  } finally {
    await scenario.close();
  }
}

/**
 * Removes a deployment when it left nothing prepared; otherwise, or when the bench failed
 * (`left` undefined), kills its processes and keeps its state and logs for inspection.
 */
async function release(deployment: ProcessCluster | Cluster, left: readonly string[] | undefined) {
  if (left?.length === 0) {
    await deployment.destroy();
    return;
  }
  const logs =
    "kill" in deployment ? [deployment.logPath] : deployment.nodes.map((n) => n.proc.logPath);
  if ("kill" in deployment) await deployment.kill();
  else await Promise.all(deployment.nodes.map((n) => n.kill()));
  say(`killed; its schema, etcd keys and data directories are kept; logs: ${logs.join(" ")}`);
}

/** The load's client count, then one client (unless the one-client pass is off). */
function clientCounts(o: Options): number[] {
  return o["serial-s"] > 0 && o.clients !== 1 ? [o.clients, 1] : [o.clients];
}

/** The scenario under this bench's id, marked "×1" for the one-client pass. */
function named(s: Scenario, id: string, clients: number, o: Options): Scenario {
  return clients === o.clients
    ? { ...s, id }
    : { ...s, id: `${id}×1`, title: `${s.title}, one client` };
}

function printResults(run: BenchRun, trials: readonly Trial[]): void {
  say(`\n${formatTable(resultTable(run.measured))}\n`);
  sayRatios(run.measured, [
    ["A.local", "A0"],
    ["A.etcd", "A0"],
    ["A.etcd", "A.local"],
    ["A.local×1", "A0×1"],
    ["A.etcd×1", "A0×1"],
    ["A.etcd×1", "A.local×1"],
  ]);
  for (const m of run.measured) {
    const cost = run.costs.find((c) => c.id === m.scenario.id);
    if (cost === undefined) continue;
    say(`\n${m.scenario.id}: the log's work, from the serving node's metrics`);
    say(formatTable(cost.rows));
    say(`${m.scenario.id}: per-step breakdown from the node's metrics, per transfer`);
    say(formatTable(m.breakdown));
  }
  const ttlMs = run.o["lease-ttl-ms"];
  for (const kind of ["crash", "handover"] as const) {
    const of = trials.filter((t) => t.kind === kind);
    if (of.length === 0) continue;
    const times = Float64Array.from(of.filter((t) => Number.isFinite(t.ms)).map((t) => t.ms));
    times.sort();
    const medianMs = percentile(times, 0.5);
    const maxMs = times.length === 0 ? Number.NaN : (times[times.length - 1] ?? Number.NaN);
    say(
      `\n${kind === "crash" ? "crash failover (SIGKILL of the leader)" : "graceful handover"}: ` +
        `${of.length} trials, ${of.length - times.length} timed out; until the first commit: ` +
        `median ${formatMs(medianMs)} ms (${formatRatio(medianMs, ttlMs)} the lease TTL of ` +
        `${ttlMs} ms), max ${formatMs(maxMs)} ms (${formatRatio(maxMs, ttlMs)}); ` +
        `load ${loadText()}`,
    );
    const withSteps = of.flatMap((t) => (t.steps === undefined ? [] : [t.steps]));
    if (withSteps.length === 0) continue;
    const median = (k: (typeof stepNames)[number]) => {
      const v = Float64Array.from(withSteps.map((st) => st[k])).sort();
      return percentile(v, 0.5);
    };
    const medians = Object.fromEntries(stepNames.map((k) => [k, median(k)]));
    say(
      `  median ms after the change (${withSteps.length} trials), per step: ` +
        stepsText(medians as Record<(typeof stepNames)[number], number>),
    );
  }
}

function loadText(): string {
  return loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");
}

// Run, unless imported (the smoke test imports the option parsing).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href)
  runMain(main);
