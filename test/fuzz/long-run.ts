/**
 * The documented long fuzz run (docs/fuzz.md): the same real node as the CI suite, then
 * Schemathesis in every phase for as long as asked, with a client token and then an admin
 * token. Prints the request counts by status class and exits non-zero on any failure or 5xx.
 *
 *   node --import tsx test/fuzz/long-run.ts [--seconds 900] [--seed 1] [--runs 1] [--max-examples 20000]
 *
 * One seed's run ends when Schemathesis has nothing new to generate (about 16,000 requests
 * for both tokens); `--runs N` repeats it with seeds seed … seed+N−1 on the same node.
 */
import { parseArgs } from "node:util";
import { startFuzzNode } from "./fuzz-node.js";
import { abortOpen } from "./node-state.js";
import { installSchemathesis, runSchemathesis } from "./schemathesis-run.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "900" },
    seed: { type: "string", default: "1" },
    runs: { type: "string", default: "1" },
    "max-examples": { type: "string", default: "20000" },
  },
});
const seconds = Number(values.seconds);
const firstSeed = Number(values.seed);
const runs = Number(values.runs);
const maxExamples = Number(values["max-examples"]);

const st = installSchemathesis();
const node = await startFuzzNode();
let failed = false;
let total = 0;
try {
  for (let seed = firstSeed; seed < firstSeed + runs; seed++) {
    for (const [label, token] of [
      ["client", node.clientToken],
      ["admin", node.adminToken],
    ] as const) {
      const r = await runSchemathesis(st, {
        url: node.url,
        token,
        mode: "all",
        phases: ["examples", "coverage", "fuzzing", "stateful"],
        maxExamples,
        maxTimeS: seconds,
        seed,
      });
      total += r.requests;
      const serverErrors = r.requestsByClass["5xx"] ?? 0;
      const summary = r.output.slice(r.output.lastIndexOf("Test cases:")).split("\n")[1] ?? "";
      console.log(
        `seed ${seed}, ${label}: ${r.requests} requests ${JSON.stringify(r.requestsByClass)}; exit ${r.exitCode}; ${summary.trim()}`,
      );
      if (r.exitCode !== 0 || serverErrors > 0) {
        failed = true;
        console.log(r.output.slice(-20_000));
      }
    }
  }
} finally {
  await abortOpen(node);
  await node.stop();
}
console.log(`total: ${total} requests; ${failed ? "FAILED" : "clean"}`);
process.exit(failed ? 1 : 0);
