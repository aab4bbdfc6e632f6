/**
 * `verdict start --config FILE`: runs a node, prints where it listens, and stops it on
 * SIGTERM or SIGINT. The process lives as long as the node.
 */
import { ConfigError, loadConfig } from "../config/load.js";
import { startNode } from "../node.js";
import { parseCommand, wantsHelp } from "./args.js";
import { CliError, exitCodes, UsageError } from "./errors.js";

export const startUsage = `usage: verdict start --config FILE

Runs a coordinator node with the configuration in FILE (YAML or JSON; see
docs/configuration.md) and prints where it listens. SIGTERM or SIGINT stops it;
SIGHUP reloads the tokens from FILE (the old ones stay valid for tokenRotationGraceMs)
and re-reads the node.tls certificate, key and CA files (docs/tls.md).

  -c, --config FILE   the configuration file (required)`;

/** Resolves once the node listens; the process then stays up until a signal stops it. */
export async function runStart(args: readonly string[]): Promise<void> {
  if (wantsHelp(args)) {
    process.stdout.write(`${startUsage}\n`);
    return;
  }
  const { positionals, values } = parseCommand(
    args,
    { config: { type: "string", short: "c" } },
    startUsage,
  );
  if (positionals.length > 0)
    throw new UsageError(`unexpected argument ${positionals[0]}`, startUsage);
  if (!values.config) throw new UsageError("--config FILE is required", startUsage);
  const configPath = values.config;
  const config = await loadConfig(configPath).catch((e: unknown) => {
    throw e instanceof ConfigError ? new CliError(exitCodes.refused, e.message) : e;
  });
  const node = await startNode(config).catch((e: unknown) => {
    // What opened before the failure (pools, the log, Kafka clients) would keep the process
    // alive with nothing listening, so a supervisor would never restart it: exit now.
    process.stderr.write(
      `start failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    process.exit(exitCodes.refused);
  });
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
  // SIGHUP reloads the tokens from the same file (rotation without a restart) and re-reads
  // the TLS files it names; anything else in the file needs a restart. A file that no longer
  // loads changes nothing; TLS files that cannot be read leave the old certificate serving.
  process.on("SIGHUP", () => {
    loadConfig(configPath).then(
      (next) => {
        node.reloadTokens(next);
        process.stderr.write(`SIGHUP: tokens reloaded from ${configPath}\n`);
        node.reloadTls(next).then(
          (reloaded) => {
            if (reloaded) process.stderr.write("SIGHUP: TLS certificate and key reloaded\n");
          },
          (e: unknown) => process.stderr.write(`SIGHUP: TLS files not reloaded: ${String(e)}\n`),
        );
      },
      (e: unknown) => process.stderr.write(`SIGHUP: ${configPath} not reloaded: ${String(e)}\n`),
    );
  });
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}
