/**
 * The log the protocol engine writes its decisions to. Single-node today
 * (local-decision-log.ts, on the WAL); a Raft-backed log implements the same interface
 * later without the engine changing. Generic over the record type: this layer knows
 * nothing of transactions.
 */

export interface LogEntry<R> {
  readonly index: number;
  readonly term: number;
  readonly record: R;
}

export interface LogSnapshot {
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array;
}

export interface AppendResult {
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly term: number;
}

export interface DecisionLog<R> {
  /**
   * Appends `records` (at least one) as consecutive entries; resolves once all are
   * durable (fsynced here; majority-fsynced under Raft). Concurrent appends share an
   * fsync (group commit) and take indices in call order. Rejects with NotLeaderError,
   * LogClosedError, LogFullError, RecordTooLargeError or LogIOError (errors.ts).
   */
  append(records: readonly R[]): Promise<AppendResult>;
  /** The latest snapshot (if any) and every durable entry after it, in index order. */
  replay(): Promise<{ snapshot?: LogSnapshot; entries: LogEntry<R>[] }>;
  /**
   * Records that `data` holds the state after applying every entry up to `index`; the
   * entries it covers may then be discarded. Resolves once the snapshot is durable.
   */
  saveSnapshot(index: number, data: Uint8Array): Promise<void>;
  /** Removes every entry >= fromIndex (which must be after the latest snapshot). */
  truncateSuffix(fromIndex: number): Promise<void>;
  /** Index of the last durable entry (the snapshot's when no entry follows it; 0 when empty). */
  lastIndex(): number;
  /**
   * Why the log refuses appends — closed (LogClosedError) or failed (the error that poisoned
   * it) — or undefined while it accepts them. For readiness probes.
   */
  refusal(): Error | undefined;
  /** Finishes the calls already made, then releases the files; later calls reject. */
  close(): Promise<void>;
}

/** How records become bytes on disk; `decode(encode(r))` must equal `r`. */
export interface RecordCodec<R> {
  encode(record: R): Uint8Array;
  decode(bytes: Uint8Array): R;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/** JSON in UTF-8: the default codec (records must survive JSON.stringify/parse). */
export function jsonCodec<R>(): RecordCodec<R> {
  return {
    encode: (record) => utf8.encode(JSON.stringify(record)),
    decode: (bytes) => JSON.parse(fromUtf8.decode(bytes)) as R,
  };
}
