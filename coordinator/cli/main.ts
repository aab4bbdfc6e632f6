/**
 * The command line: `verdict start --config FILE` runs a node and prints where it listens.
 */
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../config/load.js";
import { startNode } from "../node.js";

const usage = "usage: verdict start --config FILE";

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: "string", short: "c" } },
  });
  if (positionals[0] !== "start" || !values.config) {
    process.stderr.write(`${usage}\n`);
    return 2;
  }
  const config = await loadConfig(values.config);
  const node = await startNode(config);
  process.stdout.write(
    `verdict node ${config.node.id} listening on ${node.url} (cluster ${node.clusterId})\n`,
  );
  const stop = (signal: string) => {
    process.stderr.write(`${signal}: stopping\n`);
    node.stop().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`stop failed: ${String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exit(code);
  },
  (e: unknown) => {
    process.stderr.write(
      `${e instanceof ConfigError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    process.exit(1);
  },
);
