/**
 * The single-node DecisionLog: every entry fsynced to the local WAL before `append`
 * resolves. The term is fixed (1) until Raft replaces this with a replicated log.
 */
import type {
  AppendResult,
  DecisionLog,
  LogEntry,
  LogSnapshot,
  RecordCodec,
} from "./decision-log.js";
import { jsonCodec } from "./decision-log.js";
import { assertLog } from "./errors.js";
import type { Storage } from "./storage.js";
import { Wal } from "./wal.js";
import type { WalOptions } from "./wal.js";
import type { RecoveryReport } from "./wal-recovery.js";

export const LOCAL_TERM = 1;

export interface LocalDecisionLogOptions<R> extends Omit<WalOptions, "storage" | "dir" | "onSync"> {
  readonly storage: Storage;
  readonly dir: string;
  /** Defaults to JSON. */
  readonly codec?: RecordCodec<R>;
  /** After every fsync of entries: its latency (write + fdatasync) and how many entries it carried. */
  readonly onFsync?: (durationMs: number, entries: number) => void;
}

export class LocalDecisionLog<R> implements DecisionLog<R> {
  private constructor(
    private readonly wal: Wal,
    private readonly codec: RecordCodec<R>,
    /** What opening found: torn tail cut, files removed. */
    readonly recovery: RecoveryReport,
  ) {}

  static async open<R>(options: LocalDecisionLogOptions<R>): Promise<LocalDecisionLog<R>> {
    const { codec, onFsync, ...walOptions } = options;
    const { wal, recovery } = await Wal.open({
      ...walOptions,
      ...(onFsync === undefined
        ? {}
        : { onSync: (info) => onFsync(info.durationMs, info.entries) }),
    });
    return new LocalDecisionLog(wal, codec ?? jsonCodec<R>(), recovery);
  }

  async append(records: readonly R[]): Promise<AppendResult> {
    assertLog(records.length > 0, "append needs at least one record");
    // Indices are taken synchronously, so concurrent appends are numbered in call order.
    const firstIndex = this.wal.nextIndex();
    const entries = records.map((record, i) => ({
      index: firstIndex + i,
      term: LOCAL_TERM,
      payload: this.codec.encode(record),
    }));
    await this.wal.append(entries);
    return { firstIndex, lastIndex: firstIndex + records.length - 1, term: LOCAL_TERM };
  }

  async replay(): Promise<{ snapshot?: LogSnapshot; entries: LogEntry<R>[] }> {
    const { snapshot, entries } = await this.wal.readAll();
    const decoded = entries.map((e) => ({
      index: e.index,
      term: e.term,
      record: this.codec.decode(e.payload),
    }));
    return snapshot === undefined ? { entries: decoded } : { snapshot, entries: decoded };
  }

  saveSnapshot(index: number, data: Uint8Array): Promise<void> {
    return this.wal.saveSnapshot({ index, term: this.wal.termAt(index) ?? LOCAL_TERM, data });
  }

  truncateSuffix(fromIndex: number): Promise<void> {
    return this.wal.truncateSuffix(fromIndex);
  }

  lastIndex(): number {
    return this.wal.lastIndex();
  }

  refusal(): Error | undefined {
    return this.wal.refusal();
  }

  close(): Promise<void> {
    return this.wal.close();
  }
}
