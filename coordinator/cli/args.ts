/**
 * Argument parsing shared by the commands: node:util's parseArgs in strict mode, with its
 * errors turned into usage errors (exit 2) that name the command's usage.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./errors.js";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parses `args` against `options`; any unknown flag or missing value is a UsageError. */
export function parseCommand<O extends Options>(
  args: readonly string[],
  options: O,
  usage: string,
) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (error) {
    // parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes; their messages are readable.
    throw new UsageError(error instanceof Error ? error.message : String(error), usage);
  }
}

/** A flag's integer value within [min, max]. */
export function intFlag(
  name: string,
  value: string | undefined,
  range: { readonly min: number; readonly max: number },
  usage: string,
): number | undefined {
  if (value === undefined) return undefined;
  const n = /^[0-9]{1,15}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < range.min || n > range.max) {
    throw new UsageError(
      `--${name} must be an integer from ${range.min} to ${range.max}, not ${JSON.stringify(value)}`,
      usage,
    );
  }
  return n;
}

/** Whether `-h` / `--help` / `help` asks for the usage text. */
export function wantsHelp(args: readonly string[]): boolean {
  return args.some((a) => a === "-h" || a === "--help") || args[0] === "help";
}
