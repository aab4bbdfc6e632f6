/**
 * Three-participant bench: a transfer touching PostgreSQL (debit), Redis (INCRBY of a
 * counter) and Kafka (an event), all through Verdict, against each participant's cost alone
 * (pg-only, redis-only, kafka-only transactions through the same node), in one run, printed
 * as ratios. See docs/bench.md.
 *
 *   node --import tsx bench/mixed.ts [--clients N] [--duration-s S] [--one-phase off|on]
 *
 * Order: set-up → P, R, K, M (each after a warm-up) → drain phase 2 → checks (money debited,
 * counters credited and events produced equal what confirmed commits did; nothing left
 * prepared or staged) → clean-up. Exits 1 if a check fails.
 */
import { randomBytes } from "node:crypto";
import { cpus, loadavg } from "node:os";
import type { Redis } from "ioredis";
import type { Kafka } from "kafkajs";
import { VerdictClient } from "../client/index.js";
import { services } from "../test/support/services.js";
import { createAccounts, dropSchema, totalBalance } from "./accounts.js";
import { parseOptions, runMain, say } from "./args.js";
import {
  cleanRedis,
  committedEvents,
  compareCounts,
  countersTotal,
  mixedParticipants,
  openMixedClients,
  waitStaged,
} from "./mixed-services.js";
import { drain, measure, resultTable, type Measured } from "./measure.js";
import { mixedScenarios, type MixedScenario } from "./mixed-scenarios.js";
import { startNodeProcess } from "./node-process.js";
import { formatMs, formatRatio, formatTable } from "./stats.js";

const spec = {
  clients: { default: 16, min: 1, max: 64, help: "concurrent clients per scenario" },
  "duration-s": { default: 10, min: 1, max: 3600, help: "measured seconds per scenario" },
  "warmup-s": { default: 1, min: 0, max: 60, help: "unmeasured seconds before each" },
  accounts: { default: 1000, min: 2, max: 100_000, help: "accounts (and Redis counters)" },
  "tx-max": { default: 1_000_000, min: 1, max: 10_000_000, help: "transfers per scenario" },
  node: { default: "dist", choices: ["dist", "src"], help: "run the node from dist/ or src" },
  "one-phase": {
    default: "off",
    choices: ["off", "on"],
    help: "commit single-branch P and R in one phase (off: every scenario is two-phase)",
  },
} as const;

const balanceStart = 1_000_000;
const names = { pg: "pg-a", redis: "redis-bench", kafka: "kafka-bench" } as const;

async function main(argv: readonly string[]): Promise<number> {
  const options = parseOptions("node --import tsx bench/mixed.ts", spec, argv);
  const run = randomBytes(4).toString("hex");
  const schema = `vbench_${run}`;
  const namespace = `vbench-${run}`;
  const counterPrefix = `bench-${run}:acct:`;
  const topic = `verdict-bench-events-${run}`;
  const markerTopic = `verdict-bench-markers-${run}`;
  const stopping = new AbortController();
  process.once("SIGINT", () => stopping.abort());
  say(
    `mixed bench ${run}: ${options.clients} clients, ${options["duration-s"]} s per scenario ` +
      `(+${options["warmup-s"]} s warm-up), one phase ${options["one-phase"]}, node from ` +
      `${options.node}; ${cpus().length} cpus, load average ${loadavg()[0]?.toFixed(1)}`,
  );

  await createAccounts(services.pgUrlA, options.accounts, balanceStart);
  const debitBefore = await totalBalance(services.pgUrlA);
  const { kafka, admin, redis: redisClient } = await openMixedClients(run, topic);
  let ok = false;
  try {
    const node = await startNodeProcess({
      from: options.node as "dist" | "src",
      participants: [{ name: names.pg, connectionString: services.pgUrlA }],
      otherParticipants: mixedParticipants({ runId: run, names, namespace, markerTopic }),
      schema,
      poolSize: options.clients,
      inFlightTransactionsMax: 256,
      // Finished transactions are forgotten soon, so Redis outcome records are collected.
      protocol: { onePhase: options["one-phase"] === "on", retentionMs: 1_000 },
      log: say,
    });
    say(`node ${node.url}, cluster ${node.clusterId}`);
    const verdict = new VerdictClient({ baseUrl: node.url, token: node.token });
    const scenarios = mixedScenarios({
      verdict,
      accounts: options.accounts,
      counterPrefix,
      topic,
      names,
    });
    const measured: Measured<MixedScenario>[] = [];
    let left: string[] = [];
    try {
      for (const scenario of scenarios) {
        if (stopping.signal.aborted) break;
        measured.push(await measure(scenario, options, () => node.cpuMs(), stopping.signal));
      }
      left = await drain(`${node.clusterId}:`, [services.pgUrlA]);
      // Redis and Kafka branches finish after PostgreSQL's: let phase 2 end there too.
      await waitStaged(redisClient, `${namespace}:prepared`);
    } finally {
      await node.stop();
    }
    printMixed(measured);
    ok = await check({
      measured,
      left,
      debitBefore,
      redisClient,
      counterPrefix,
      accounts: options.accounts,
      stagedKey: `${namespace}:prepared`,
      kafka,
      topic,
    });
  } finally {
    await dropSchema(services.pgUrlA, schema).catch(() => undefined);
    await cleanRedis(redisClient, counterPrefix, options.accounts, namespace);
    redisClient.disconnect();
    await admin.deleteTopics({ topics: [topic, markerTopic] }).catch(() => undefined);
    await admin.disconnect();
  }
  say(ok ? "checks passed" : "CHECKS FAILED");
  return ok ? 0 : 1;
}

async function check(run: {
  readonly measured: readonly Measured<MixedScenario>[];
  readonly left: readonly string[];
  readonly debitBefore: bigint;
  readonly redisClient: Redis;
  readonly counterPrefix: string;
  readonly accounts: number;
  readonly stagedKey: string;
  readonly kafka: Kafka;
  readonly topic: string;
}): Promise<boolean> {
  const errors = run.measured.reduce((n, m) => n + m.result.errors, 0);
  const sum = (f: (s: MixedScenario) => number) =>
    run.measured.reduce((n, m) => n + f(m.scenario), 0);
  const debited = Number(run.debitBefore - (await totalBalance(services.pgUrlA)));
  const credited = await countersTotal(run.redisClient, run.counterPrefix, run.accounts);
  const events = await committedEvents(run.kafka, run.topic);
  const staged = await run.redisClient.scard(run.stagedKey);
  let ok = compareCounts(
    [
      ["pg-a debited", sum((s) => s.debited()), debited],
      ["Redis counters credited", sum((s) => s.credited()), credited],
      ["Kafka events", sum((s) => s.events()), events],
    ],
    errors,
    say,
  );
  if (run.left.length > 0 || staged > 0) {
    ok = false;
    say(`left behind: ${run.left.length} PostgreSQL branches prepared, ${staged} Redis staged`);
  }
  return ok;
}

function printMixed(measured: readonly Measured<MixedScenario>[]): void {
  say(`\n${formatTable(resultTable(measured))}\n`);
  const byId = new Map(measured.map((m) => [m.scenario.id, m.result]));
  const m = byId.get("M");
  if (m === undefined) return;
  for (const alone of ["P", "R", "K"]) {
    const a = byId.get(alone);
    if (a === undefined) continue;
    say(
      `M/${alone}: throughput ${formatRatio(m.opsPerSecond, a.opsPerSecond)}, ` +
        `p50 ${formatRatio(m.latency.p50Ms, a.latency.p50Ms)}, ` +
        `p99 ${formatRatio(m.latency.p99Ms, a.latency.p99Ms)}`,
    );
  }
  const parts = ["P", "R", "K"].map((id) => byId.get(id));
  if (parts.every((p) => p !== undefined)) {
    const p50Sum = parts.reduce((n, p) => n + (p?.latency.p50Ms ?? 0), 0);
    say(
      `M p50 ${formatMs(m.latency.p50Ms)} ms against P+R+K p50 ${formatMs(p50Sum)} ms: ` +
        `${formatRatio(m.latency.p50Ms, p50Sum)} (below 1: branches prepare and commit in parallel)`,
    );
  }
}

runMain(main);
