/**
 * Transfer bench: Verdict against its floor, run side by side in one process, printed as
 * ratios (a machine's absolute figures say little; the ratios travel). See docs/bench.md.
 *
 *   node --import tsx bench/transfer.ts [--clients N] [--duration-s S] [--accounts K]
 *
 * Order: set-up → A0, A, A1, B0, B (each after a short warm-up) → A0, A, A1 with one client
 * → wait for Verdict's phase 2 to drain → stop the node → check that money was conserved and
 * nothing was left prepared. Prints each scenario's per-step breakdown (breakdown.ts) and
 * every goal of the speed issue with its ratio (goals.ts). Exits 1 if a check fails.
 */
import { randomBytes } from "node:crypto";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { VerdictClient } from "../client/index.js";
import { services } from "../test/support/services.js";
import { parseOptions, runMain, say } from "./args.js";
import { scrapeMetrics } from "./breakdown.js";
import { goalTable } from "./goals.js";
import { drain, measure, resultTable, type Measured } from "./measure.js";
import { checkMoney, setUpAccounts } from "./money.js";
import { startNodeProcess } from "./node-process.js";
import {
  directOnePhase,
  directTwoPhase,
  verdictOneBranch,
  verdictOneRequest,
  verdictTwoBranch,
  type Databases,
  type Scenario,
} from "./scenarios.js";
import { formatRatio, formatTable } from "./stats.js";

// Clients are capped so that A0 (two connections per client) plus the node's two pools
// (as many again) stay well under PostgreSQL's max_connections (300 in deploy/local).
const spec = {
  clients: { default: 16, min: 1, max: 64, help: "concurrent clients per scenario" },
  "duration-s": { default: 10, min: 1, max: 3600, help: "measured seconds per scenario" },
  "warmup-s": { default: 1, min: 0, max: 60, help: "unmeasured seconds before each" },
  "serial-s": { default: 5, min: 0, max: 3600, help: "seconds of the one-client pass (0: none)" },
  accounts: { default: 1000, min: 2, max: 10_000_000, help: "accounts per database" },
  "tx-max": { default: 1_000_000, min: 1, max: 10_000_000, help: "transfers per scenario" },
  node: { default: "dist", choices: ["dist", "src"], help: "run the node from dist/ or src" },
  profile: { default: "off", choices: ["off", "on"], help: "CPU-profile the node (--cpu-prof)" },
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

  printResults(measured, nodePeakRssMb);
  const ok = await checkMoney({
    db,
    runId,
    schemas: [schema],
    runs: measured,
    verdictLeft,
    before,
  });
  say(ok ? "checks passed" : "CHECKS FAILED");
  return ok ? 0 : 1;
}

/** The same scenario, run by one client: its id marked "×1". */
async function oneClient(scenario: Promise<Scenario>): Promise<Scenario> {
  const s = await scenario;
  return { ...s, id: `${s.id}×1`, title: `${s.title}, one client` };
}

function printResults(measured: readonly Measured[], nodePeakRssMb: number): void {
  say(`\n${formatTable(resultTable(measured))}\n`);
  for (const m of measured) {
    if (m.breakdown.length <= 1) continue;
    say(`${m.scenario.id}: per-step breakdown from the node's metrics, per transfer`);
    say(formatTable(m.breakdown));
    say(`${m.scenario.id}: ${m.appendsPerFsync.toFixed(2)} log appends per fsync\n`);
  }
  const byId = new Map(measured.map((m) => [m.scenario.id, m.result]));
  for (const [subject, floor] of [
    ["A", "A0"],
    ["A1", "A0"],
    ["B", "B0"],
    ["A×1", "A0×1"],
    ["A1×1", "A0×1"],
  ] as const) {
    const s = byId.get(subject);
    const f = byId.get(floor);
    if (s === undefined || f === undefined) continue;
    say(
      `${subject}/${floor}: throughput ${formatRatio(s.opsPerSecond, f.opsPerSecond)}, ` +
        `p50 latency ${formatRatio(s.latency.p50Ms, f.latency.p50Ms)}, ` +
        `p99 latency ${formatRatio(s.latency.p99Ms, f.latency.p99Ms)}`,
    );
  }
  say(`\ngoals of the speed issue (this run):\n${formatTable(goalTable(measured, nodePeakRssMb))}`);
}

runMain(main);
