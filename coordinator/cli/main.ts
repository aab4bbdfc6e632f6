#!/usr/bin/env node
/**
 * The command line: `verdict start` runs a node, `verdict admin` talks to a running one,
 * `verdict log` reads a stopped one's decision log. Expected failures print one line on
 * stderr and exit with the code of errors.ts; a bug prints its stack and exits 1.
 */
import { runAdmin } from "./admin/command.js";
import { wantsHelp } from "./args.js";
import { CliError, exitCodes, UsageError } from "./errors.js";
import { runLog } from "./log/dump.js";

const usage = `usage: verdict <command> [flags]

commands:
  start --config FILE     run a coordinator node
  admin <command>         inspect and resolve transactions on a running node
                          (list, show, resolve, recovery, participants, cluster)
  log dump --data-dir DIR print a stopped node's decision log, read only

Run "verdict <command> --help" for the flags of each.`;

const write = (line: string) => process.stdout.write(`${line}\n`);

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "start":
      // Loaded only here: the node's modules (pg, fastify, …) would slow every other command.
      // The node keeps the process alive; a signal ends it (start.ts).
      await (await import("./start.js")).runStart(rest);
      return exitCodes.ok;
    case "admin":
      write(await runAdmin(rest));
      return exitCodes.ok;
    case "log":
      return runLog(rest, write);
    default:
      if (command !== undefined && wantsHelp(argv)) {
        write(usage);
        return exitCodes.ok;
      }
      throw new UsageError(
        command === undefined ? "no command given" : `unknown command ${command}`,
        usage,
      );
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // exitCode, not exit(): stdout is flushed first. Only `start` leaves handles open.
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n\n${e.usage}\n`);
    } else if (e instanceof CliError) {
      process.stderr.write(`${e.message}\n`);
    } else {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    }
    process.exitCode = e instanceof CliError ? e.exitCode : exitCodes.refused;
  },
);
