/**
 * The long random-kill soak (docs/soak.md):
 *
 *   npm run -s build
 *   node --import tsx test/chaos/soak-main.ts --seed 42 --kills 200 --clients 12
 *
 * Prints a line per kill, then the figures and every violation; exit 0 when none, 1 when
 * any (the evidence is saved under .local/soak/), 2 for a bad option.
 */
import { UsageError, parseOptions, say } from "../../bench/args.js";
import { ensureBuilt, killLeftovers } from "../support/process-node.js";
import { runSoak, soakFigures, type SoakOptions } from "./soak.js";
import { freshSeed } from "./soak-workload.js";

const spec = {
  seed: {
    default: freshSeed(),
    min: 0,
    max: 2 ** 31 - 1,
    help: "replays a run (a fresh one if absent)",
  },
  kills: { default: 200, min: 1, max: 10_000, help: "SIGKILLs before the last restart" },
  clients: { default: 12, min: 1, max: 64, help: "concurrent clients" },
  "kill-ms-min": { default: 3_000, min: 100, max: 600_000, help: "shortest run of the node" },
  "kill-ms-max": { default: 6_000, min: 100, max: 600_000, help: "longest run of the node" },
  accounts: { default: 200, min: 2, max: 100_000, help: "accounts per database" },
  "doomed-percent": { default: 10, min: 0, max: 100, help: "transfers that vote no" },
  "settle-timeout-ms": { default: 120_000, min: 1_000, max: 3_600_000, help: "recovery bound" },
  "transfers-per-client-max": { default: 1_000_000, min: 1, max: 10_000_000, help: "per client" },
  "log-level": { default: "info", choices: ["debug", "info", "warn"], help: "the node's" },
  "kafka-pool-size": {
    default: 16,
    min: 1,
    max: 1024,
    help: "fewer: more branches per Kafka transaction",
  },
} as const;

async function main(): Promise<number> {
  let args;
  try {
    args = parseOptions("node --import tsx test/chaos/soak-main.ts", spec, process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 2;
  }
  if (args["kill-ms-min"] > args["kill-ms-max"]) {
    process.stderr.write("--kill-ms-min must not exceed --kill-ms-max\n");
    return 2;
  }
  const options: SoakOptions = {
    seed: args.seed,
    kills: args.kills,
    clients: args.clients,
    killMsMin: args["kill-ms-min"],
    killMsMax: args["kill-ms-max"],
    accounts: args.accounts,
    doomedPercent: args["doomed-percent"],
    settleTimeoutMs: args["settle-timeout-ms"],
    transfersPerClientMax: args["transfers-per-client-max"],
    logLevel: args["log-level"],
    kafkaPoolSize: args["kafka-pool-size"],
  };
  ensureBuilt();
  try {
    const result = await runSoak(options, say);
    for (const line of soakFigures(options, result)) say(line);
    return result.violations.length === 0 ? 0 : 1;
  } finally {
    await killLeftovers();
  }
}

process.exitCode = await main();
