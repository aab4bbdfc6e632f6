/** Structured JSON logs (pino); every line about a transaction carries its xid. */
import { pino, type Logger } from "pino";

export function createLogger(level: string, nodeId: string): Logger {
  return pino({ level, base: { node: nodeId }, timestamp: pino.stdTimeFunctions.isoTime });
}
