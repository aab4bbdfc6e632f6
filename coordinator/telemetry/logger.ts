/** Structured JSON logs (pino); every line about a transaction carries its xid. */
import { pino, type DestinationStream, type Logger } from "pino";

/**
 * Fields that may hold a credential (a back end's password, a connection string with one in
 * it, a bearer secret), censored wherever a log line carries them, up to two levels deep
 * (docs/tls-backends.md, "Secrets"). No code logs them on purpose; this catches a mistake.
 */
export const redactedPaths = ["password", "connectionString", "secret"].flatMap((f) => [
  f,
  `*.${f}`,
  `*.*.${f}`,
]);

/** Logs to stdout, or to `destination` (tests). */
export function createLogger(
  level: string,
  nodeId: string,
  destination?: DestinationStream,
): Logger {
  const options = {
    level,
    base: { node: nodeId },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: redactedPaths, censor: "[redacted]" },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
