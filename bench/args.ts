/** Command-line options of the benches: bounded integers and fixed choices, checked up front. */
import { parseArgs } from "node:util";

export interface IntOption {
  readonly default: number;
  readonly min: number;
  readonly max: number;
  readonly help: string;
}

export interface ChoiceOption {
  readonly default: string;
  readonly choices: readonly string[];
  readonly help: string;
}

export type OptionSpec = Record<string, IntOption | ChoiceOption>;

export type ParsedOptions<S extends OptionSpec> = {
  readonly [K in keyof S]: S[K] extends IntOption ? number : string;
};

export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Parses `--name value` options against `spec`; throws UsageError with the usage text. */
export function parseOptions<S extends OptionSpec>(
  command: string,
  spec: S,
  argv: readonly string[],
): ParsedOptions<S> {
  const usage = usageOf(command, spec);
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      options: Object.fromEntries(
        Object.keys(spec).map((name) => [name, { type: "string" as const }]),
      ),
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new UsageError(`${err instanceof Error ? err.message : String(err)}\n${usage}`);
  }
  const parsed: Record<string, number | string> = {};
  for (const [name, option] of Object.entries(spec)) {
    const raw = values[name];
    if (typeof raw !== "string") {
      parsed[name] = option.default;
    } else if ("choices" in option) {
      if (!option.choices.includes(raw)) {
        throw new UsageError(`--${name} must be one of ${option.choices.join(", ")}\n${usage}`);
      }
      parsed[name] = raw;
    } else {
      const value = Number(raw);
      if (!Number.isInteger(value) || value < option.min || value > option.max) {
        throw new UsageError(
          `--${name} must be an integer in ${option.min}..${option.max}\n${usage}`,
        );
      }
      parsed[name] = value;
    }
  }
  return parsed as ParsedOptions<S>;
}

function usageOf(command: string, spec: OptionSpec): string {
  const lines = Object.entries(spec).map(([name, option]) => {
    const range = "choices" in option ? option.choices.join("|") : `${option.min}..${option.max}`;
    return `  --${name} <${range}>  ${option.help} (default ${option.default})`;
  });
  return `usage: ${command} [options]\n${lines.join("\n")}`;
}

export function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Runs a bench's main and exits with its code: 2 for a usage error, 1 for any other failure. */
export function runMain(main: (argv: string[]) => Promise<number>): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(
        `${err instanceof UsageError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exit(err instanceof UsageError ? 2 : 1);
    },
  );
}
