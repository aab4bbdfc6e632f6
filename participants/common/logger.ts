/**
 * The logger every participant takes: a minimal structural (pino-compatible) interface, so
 * no participant needs a logging library.
 */

export interface ParticipantLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** The default when the caller gives no logger. */
export const silentLogger: ParticipantLogger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
