/**
 * The cluster nemesis soak (docs/cluster-faults.md): three Verdict nodes over a private etcd,
 * random faults drawn from a seed for as long as asked, under mixed load, then every check:
 *
 *   npm run -s build
 *   node --import tsx test/cluster/nemesis-main.ts --seed 42 --minutes 30
 *
 * Prints a line per fault, then the figures (faults, failovers, transfers, violations); exit 0
 * when there is no violation, 1 when there is one (evidence under .local/cluster-faults/),
 * 2 for a bad option.
 */
import { UsageError, parseOptions, say } from "../../bench/args.js";
import { freshSeed } from "../chaos/soak-workload.js";
import { ensureBuilt } from "../support/process-node.js";
import { linearizabilityChecker } from "./linearizability.js";
import { faultKinds, runNemesis, type FaultKind } from "./nemesis.js";

const spec = {
  seed: { default: freshSeed(), min: 0, max: 2 ** 31 - 1, help: "replays a run's faults and load" },
  minutes: { default: 10, min: 1, max: 24 * 60, help: "how long faults are drawn" },
  only: {
    default: "all",
    choices: ["all", ...faultKinds],
    help: "draw only this fault",
  },
} as const;

async function main(): Promise<number> {
  let args;
  try {
    args = parseOptions(
      "node --import tsx test/cluster/nemesis-main.ts",
      spec,
      process.argv.slice(2),
    );
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 2;
  }
  ensureBuilt();
  linearizabilityChecker();
  const kinds = args.only === "all" ? faultKinds : [args.only as FaultKind];
  const r = await runNemesis({ seed: args.seed, durationMs: args.minutes * 60_000, kinds, say });
  const faults = Object.values(r.faults).reduce((a, b) => a + b, 0);
  say(
    `nemesis seed ${args.seed}, ${args.minutes} min: ${faults} faults ${JSON.stringify(r.faults)}`,
  );
  say(`failovers ${Math.max(0, r.verdict.terms.length - 1)} (terms ${r.verdict.terms.length})`);
  say(`failpoints fired ${JSON.stringify(r.failpointsFired)}`);
  say(r.line);
  for (const v of r.verdict.violations.slice(0, 40)) say(`  ${v}`);
  if (r.evidenceDir !== undefined) say(`evidence: ${r.evidenceDir}`);
  say(
    `replay: node --import tsx test/cluster/nemesis-main.ts --seed ${args.seed} --minutes ${args.minutes}`,
  );
  return r.verdict.violations.length === 0 ? 0 : 1;
}

process.exitCode = await main();
