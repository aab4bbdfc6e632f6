/**
 * The command line's exit codes and the one error type that carries them. Scripts rely on
 * the codes: 1 the server (or the log) said no, 2 the command was wrong, 3 the server could
 * not be asked or failed.
 */
export const exitCodes = {
  ok: 0,
  /** A refused request (4xx), a log that would not open, a missing file. */
  refused: 1,
  /** Bad usage: unknown command or flag, a missing or malformed value. */
  usage: 2,
  /** The server is unreachable, timed out or answered 5xx. */
  unavailable: 3,
} as const;

export type ExitCode = (typeof exitCodes)[keyof typeof exitCodes];

/** An expected failure of a command: its message goes to stderr, its code to the shell. */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    options?: { readonly cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Bad usage; `usage` (the command's usage text) is printed after the message. */
export class UsageError extends CliError {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(exitCodes.usage, message);
  }
}
