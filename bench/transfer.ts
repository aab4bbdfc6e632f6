/**
 * Transfer bench: Verdict against its floor, run side by side in one process, printed as
 * ratios (a machine's absolute figures say little; the ratios travel). See docs/bench.md.
 *
 *   node --import tsx bench/transfer.ts [--clients N] [--duration-s S] [--accounts K]
 *
 * Order: set-up → A0, A, A1, B0, B (each after a short warm-up) → A0, A, A1 with one client
 * → wait for Verdict's phase 2 to drain → stop the node → the mixed transfer M0, M, M1 on a
 * node of its own (mixed-transfer.ts; `--mixed`) → A through three nodes on etcd, with 16
 * clients then one (cluster.ts's deployment; `--cluster`) → check that money was conserved,
 * Redis and Kafka got what confirmed transfers wrote, and nothing was left prepared. Prints
 * each scenario's per-step breakdown (breakdown.ts) and every goal of the speed issue with
 * its ratio (goals.ts). Exits 1 if a check fails.
 */
import { randomBytes } from "node:crypto";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { VerdictClient } from "../client/index.js";
import { services } from "../test/support/services.js";
import { ensureBuilt } from "../test/support/process-node.js";
import { etcdEndpoints } from "../test/support/cluster.js";
import { parseOptions, runMain, say, type ParsedOptions } from "./args.js";
import { scrapeMetrics } from "./breakdown.js";
import { etcdCluster, parseClusterOptions, type BenchRun } from "./cluster.js";
import { goalTable } from "./goals.js";
import { drain, measure, resultTable, sayRatios, type Measured } from "./measure.js";
import { runMixedTransfer } from "./mixed-transfer.js";
import { checkMoney, setUpAccounts } from "./money.js";
import { startNodeProcess } from "./node-process.js";
import { loadOptions, partOption, partRuns } from "./options.js";
import {
  directOnePhase,
  directTwoPhase,
  verdictOneBranch,
  verdictOneRequest,
  verdictTwoBranch,
  type Databases,
  type Scenario,
} from "./scenarios.js";
import { formatTable } from "./stats.js";

const spec = {
  ...loadOptions,
  node: { default: "dist", choices: ["dist", "src"], help: "run the node from dist/ or src" },
  profile: { default: "off", choices: ["off", "on"], help: "CPU-profile the node (--cpu-prof)" },
  mixed: partOption("the mixed transfer M0/M/M1 (auto: if Redis and Kafka answer)"),
  cluster: partOption("A through the 3-node etcd cluster (auto: if etcd answers)"),
  "prepare-order": {
    default: "parallel",
    choices: ["parallel", "ordered"],
    help: "the node's protocol.prepareOrder",
  },
  "lock-timeout-ms": {
    default: 1000,
    min: 0,
    max: 60_000,
    help: "lock_timeout of Verdict's branches (lockTimeoutMs) and of A0's sessions (0: none)",
  },
} as const;

async function main(argv: readonly string[]): Promise<number> {
  const options = parseOptions("node --import tsx bench/transfer.ts", spec, argv);
  const clients = options.clients;
  const db: Databases = {
    urlA: services.pgUrlA,
    urlB: services.pgUrlB,
    accounts: options.accounts,
    lockTimeoutMs: options["lock-timeout-ms"],
  };
  const runId = randomBytes(4).toString("hex");
  const schema = `vbench_${runId}`;
  const profileDir = join(tmpdir(), `verdict-bench-profile-${runId}`);
  const stopping = new AbortController();
  process.once("SIGINT", () => {
    say("SIGINT: finishing the running scenario early");
    stopping.abort();
  });

  say(
    `transfer bench ${runId}: ${clients} clients, ${options["duration-s"]} s per scenario ` +
      `(+${options["warmup-s"]} s warm-up), ${db.accounts} accounts per database, ` +
      `node from ${options.node}, prepares ${options["prepare-order"]}, lock_timeout ` +
      `${db.lockTimeoutMs} ms; ${cpus().length} cpus, node ${process.version}, ` +
      `load average ${loadavg()[0]?.toFixed(1)}`,
  );
  const before = await setUpAccounts(db);

  const node = await startNodeProcess({
    from: options.node as "dist" | "src",
    participants: [
      { name: "pg-a", connectionString: db.urlA, lockTimeoutMs: db.lockTimeoutMs },
      { name: "pg-b", connectionString: db.urlB, lockTimeoutMs: db.lockTimeoutMs },
    ],
    protocol: { prepareOrder: options["prepare-order"] },
    schema,
    // As many branch connections as the direct scenarios open: like for like.
    poolSize: clients,
    inFlightTransactionsMax: 256,
    log: say,
    ...(options.profile === "on"
      ? { nodeFlags: ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] }
      : {}),
  });
  say(`node ${node.url}, cluster ${node.clusterId}, schema ${schema}`);
  const verdict = new VerdictClient({ baseUrl: node.url, token: node.token });

  const measured: Measured[] = [];
  let verdictLeft: string[] = [];
  let nodePeakRssMb = Number.NaN;
  try {
    const serial = { ...options, clients: 1, "duration-s": options["serial-s"] };
    const runs: { make: () => Promise<Scenario>; options: typeof options }[] = [
      { make: () => directTwoPhase(db, clients, runId), options },
      { make: () => Promise.resolve(verdictTwoBranch(verdict, db)), options },
      { make: () => Promise.resolve(verdictOneRequest(verdict, db)), options },
      { make: () => directOnePhase(db, clients), options },
      { make: () => Promise.resolve(verdictOneBranch(verdict, db)), options },
    ];
    if (options["serial-s"] > 0) {
      runs.push(
        { make: () => oneClient(directTwoPhase(db, 1, runId)), options: serial },
        { make: () => oneClient(Promise.resolve(verdictTwoBranch(verdict, db))), options: serial },
        { make: () => oneClient(Promise.resolve(verdictOneRequest(verdict, db))), options: serial },
      );
    }
    const scrape = () => scrapeMetrics(node.url);
    for (const run of runs) {
      if (stopping.signal.aborted) break;
      const scenario = await run.make();
      try {
        measured.push(
          await measure(scenario, run.options, () => node.cpuMs(), stopping.signal, scrape),
        );
      } finally {
        await scenario.close();
      }
    }
    nodePeakRssMb = node.peakRssMb();
    verdictLeft = await drain(`${node.clusterId}:`, [db.urlA, db.urlB]);
  } finally {
    verdict.close();
    await node.stop();
  }
  if (options.profile === "on") say(`node CPU profile written to ${profileDir}`);
  const other = await otherDeployments(options, db, runId, stopping.signal);
  measured.push(...other.measured);

  printResults(measured, nodePeakRssMb, other.costs);
  const moneyOk = await checkMoney({
    db,
    runId,
    schemas: [schema, ...other.schemas],
    runs: measured,
    verdictLeft: [...verdictLeft, ...other.verdictLeft],
    before,
  });
  const ok = moneyOk && other.ok;
  say(ok ? "checks passed" : "CHECKS FAILED");
  return ok ? 0 : 1;
}

interface OtherDeployments {
  readonly measured: Measured[];
  readonly verdictLeft: string[];
  readonly schemas: string[];
  /** Per scenario through etcd: the log's work (cluster-metrics.ts). */
  readonly costs: { readonly id: string; readonly rows: string[][] }[];
  readonly ok: boolean;
}

/**
 * After the main node: the mixed transfer on its own node (mixed-transfer.ts), then A through
 * three nodes on etcd (cluster.ts's deployment, with no leader changes). A part that fails is
 * reported and fails the run; the others still run and print.
 */
async function otherDeployments(
  options: ParsedOptions<typeof spec>,
  db: Databases,
  runId: string,
  signal: AbortSignal,
): Promise<OtherDeployments> {
  const other: OtherDeployments = {
    measured: [],
    verdictLeft: [],
    schemas: [],
    costs: [],
    ok: true,
  };
  const fail = (part: string, err: unknown) => {
    say(`${part} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return { ...other, ok: false };
  };
  let result = other;
  const redisUrl = new URL(services.redisUrl);
  const redisAddress = `${redisUrl.hostname}:${redisUrl.port || "6379"}`;
  if (
    !signal.aborted &&
    (await partRuns(options.mixed, [redisAddress, ...services.kafkaBrokers]))
  ) {
    const mixedOptions = {
      ...options,
      node: options.node as "dist" | "src",
      prepareOrder: options["prepare-order"],
    };
    try {
      const mixed = await runMixedTransfer(db, mixedOptions, runId, signal);
      result = {
        ...result,
        measured: [...result.measured, ...mixed.measured],
        verdictLeft: [...result.verdictLeft, ...mixed.verdictLeft],
        schemas: [...result.schemas, mixed.schema],
        ok: result.ok && mixed.ok,
      };
    } catch (err) {
      result = fail("mixed transfer", err);
    }
  }
  if (!signal.aborted && (await partRuns(options.cluster, etcdEndpoints))) {
    try {
      ensureBuilt();
      const run: BenchRun = {
        o: parseClusterOptions(clusterArgs(options)),
        db,
        runId,
        signal,
        measured: [],
        costs: [],
      };
      const { left } = await etcdCluster(run, []);
      result = {
        ...result,
        measured: [...result.measured, ...run.measured],
        verdictLeft: [...result.verdictLeft, ...left],
        costs: run.costs,
      };
    } catch (err) {
      result = fail("3-node etcd cluster", err);
    }
  }
  return result;
}

/** cluster.ts's options for this run's load, without leader changes. */
function clusterArgs(options: ParsedOptions<typeof spec>): string[] {
  const args = ["--failover-trials", "0", "--handover-trials", "0"];
  for (const name of Object.keys(loadOptions) as (keyof typeof loadOptions)[]) {
    args.push(`--${name}`, String(options[name]));
  }
  return args;
}

/** The same scenario, run by one client: its id marked "×1". */
async function oneClient(scenario: Promise<Scenario>): Promise<Scenario> {
  const s = await scenario;
  return { ...s, id: `${s.id}×1`, title: `${s.title}, one client` };
}

function printResults(
  measured: readonly Measured[],
  nodePeakRssMb: number,
  costs: OtherDeployments["costs"],
): void {
  say(`\n${formatTable(resultTable(measured))}\n`);
  for (const cost of costs) {
    say(`${cost.id}: the log's work, from the serving node's metrics`);
    say(`${formatTable(cost.rows)}\n`);
  }
  for (const m of measured) {
    if (m.breakdown.length <= 1) continue;
    say(`${m.scenario.id}: per-step breakdown from the node's metrics, per transfer`);
    say(formatTable(m.breakdown));
    // The etcd log has no fsync of its own (cost rows above instead).
    if (Number.isFinite(m.appendsPerFsync))
      say(`${m.scenario.id}: ${m.appendsPerFsync.toFixed(2)} log appends per fsync`);
    if (Number.isFinite(m.kafkaBranchesPerTransaction)) {
      const per = m.kafkaBranchesPerTransaction.toFixed(2);
      say(`${m.scenario.id}: ${per} Kafka branches per Kafka transaction`);
    }
    say("");
  }
  sayRatios(measured, [
    ["A", "A0"],
    ["A1", "A0"],
    ["B", "B0"],
    ["A×1", "A0×1"],
    ["A1×1", "A0×1"],
    ["M", "M0"],
    ["M1", "M0"],
    ["A.etcd", "A0"],
    ["A.etcd×1", "A0×1"],
  ]);
  say(`\ngoals of the speed issue (this run):\n${formatTable(goalTable(measured, nodePeakRssMb))}`);
}

runMain(main);
