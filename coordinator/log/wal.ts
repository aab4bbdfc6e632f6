/**
 * A segmented write-ahead log of opaque records, each with a log index and a term.
 *
 * Contract:
 * - `append` resolves only once its records are fdatasynced (and, for a new segment,
 *   the directory fsynced). Appends issued while a write + fsync is in flight are
 *   batched into the next single write + single fsync (group commit).
 * - Operations take effect in call order: appends, truncations, snapshot compaction,
 *   reads and close run one at a time from a single queue. Indices and terms are
 *   checked when a call is made, against the state every earlier call will leave.
 * - A failed storage call poisons the log (the kernel may have dropped dirty pages, so
 *   retrying an fsync proves nothing): every pending and later call rejects with the
 *   LogIOError; reopening rescans the disk.
 * - Limits: records over `recordBytesMax` and appends over `pendingAppendsMax` /
 *   `pendingBytesMax` are rejected at once with a typed error; nothing queues unbounded.
 */
import { AssertionError } from "node:assert";
import { performance } from "node:perf_hooks";
import {
  LogClosedError,
  LogError,
  LogFullError,
  LogIOError,
  RecordTooLargeError,
  assertLog,
} from "./errors.js";
import { FrameKind, encodeFrameInto, frameBytes } from "./record-codec.js";
import { joinPath } from "./storage.js";
import type { Storage, StorageFile } from "./storage.js";
import { TermRuns } from "./term-runs.js";
import { parseSegment, segmentName, snapshotName } from "./wal-files.js";
import type { SegmentState, SnapshotState } from "./wal-files.js";
import { readWal, writeSnapshotFile } from "./wal-io.js";
import type { WalEntry, WalSnapshot } from "./wal-io.js";
import { recoverWal } from "./wal-recovery.js";
import type { RecoveryReport, WalLogger } from "./wal-recovery.js";

export type { WalEntry, WalSnapshot } from "./wal-io.js";

export interface WalSyncInfo {
  readonly durationMs: number;
  readonly entries: number;
  readonly bytes: number;
}

export interface WalOptions {
  readonly storage: Storage;
  readonly dir: string;
  readonly segmentBytesMax?: number;
  readonly recordBytesMax?: number;
  readonly snapshotBytesMax?: number;
  /** Append calls queued or in flight. */
  readonly pendingAppendsMax?: number;
  readonly pendingBytesMax?: number;
  /** Bytes one group-commit write may carry (at least one record always goes). */
  readonly writeBytesMax?: number;
  /** Called after every write + fdatasync of records (metrics: latency, entries per fsync). */
  readonly onSync?: (info: WalSyncInfo) => void;
  readonly logger?: WalLogger;
}

export const walDefaults = {
  segmentBytesMax: 64 * 1024 * 1024,
  recordBytesMax: 1024 * 1024,
  snapshotBytesMax: 1024 * 1024 * 1024,
  pendingAppendsMax: 10_000,
  pendingBytesMax: 64 * 1024 * 1024,
  writeBytesMax: 4 * 1024 * 1024,
} as const;

type Limits = { -readonly [K in keyof typeof walDefaults]: number };

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}
type Op =
  | (Waiter & { kind: "append"; entries: readonly WalEntry[]; bytes: number })
  | (Waiter & { kind: "control"; name: string; run: () => Promise<void> });

export class Wal {
  private readonly queue: Op[] = [];
  private draining = false;
  private pendingAppends = 0;
  private pendingBytes = 0;
  private closed = false;
  /** Set by the first failed operation; the log refuses everything after it. */
  private failure: Error | undefined;
  private active: { segment: SegmentState; file: StorageFile } | undefined;
  /** The log as every accepted call will leave it; `durable` is the log on disk. */
  private readonly accepted: TermRuns;
  private snapshotChain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly options: WalOptions,
    private readonly limits: Limits,
    private snapshot: SnapshotState | undefined,
    private readonly segments: SegmentState[],
    private readonly durable: TermRuns,
  ) {
    this.accepted = new TermRuns(snapshot?.index ?? 0, snapshot?.term ?? 0);
    for (let i = (snapshot?.index ?? 0) + 1; i <= durable.lastIndex(); i++) {
      this.accepted.push(i, durable.termAt(i) ?? 0);
    }
  }

  static async open(options: WalOptions): Promise<{ wal: Wal; recovery: RecoveryReport }> {
    const limits: Limits = { ...walDefaults };
    for (const key of Object.keys(walDefaults) as (keyof Limits)[]) {
      const value = options[key] ?? walDefaults[key];
      assertLog(Number.isSafeInteger(value) && value > 0, `${key} must be a positive integer`);
      limits[key] = value;
    }
    const recovered = await recoverWal(options.storage, options.dir, limits, options.logger);
    const wal = new Wal(options, limits, recovered.snapshot, recovered.segments, recovered.terms);
    const last = recovered.segments.at(-1);
    if (last !== undefined) {
      wal.active = { segment: last, file: await options.storage.open(wal.path(last.name)) };
    }
    return { wal, recovery: recovered.report };
  }

  /** Index of the last durable entry (the snapshot's when the log after it is empty). */
  lastIndex(): number {
    return this.durable.lastIndex();
  }

  lastTerm(): number {
    return this.durable.lastTerm();
  }

  /** Index the next append must start at. */
  nextIndex(): number {
    return this.accepted.lastIndex() + 1;
  }

  /** Term of a durable index, or undefined when compacted away or not written. */
  termAt(index: number): number | undefined {
    return this.durable.termAt(index);
  }

  snapshotIndex(): number {
    return this.snapshot?.index ?? 0;
  }

  append(entries: readonly WalEntry[]): Promise<void> {
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    let bytes = 0;
    for (const entry of entries) {
      if (entry.payload.byteLength > this.limits.recordBytesMax) {
        return Promise.reject(
          new RecordTooLargeError(
            "recordBytesMax",
            entry.payload.byteLength,
            this.limits.recordBytesMax,
          ),
        );
      }
      bytes += frameBytes(entry.payload.byteLength);
    }
    if (this.pendingAppends + 1 > this.limits.pendingAppendsMax) {
      return Promise.reject(
        new LogFullError("pendingAppendsMax", this.pendingAppends, this.limits.pendingAppendsMax),
      );
    }
    if (bytes > this.limits.pendingBytesMax) {
      // Could never fit, however long the caller waits.
      return Promise.reject(
        new RecordTooLargeError("pendingBytesMax", bytes, this.limits.pendingBytesMax),
      );
    }
    if (this.pendingBytes + bytes > this.limits.pendingBytesMax) {
      return Promise.reject(
        new LogFullError("pendingBytesMax", this.pendingBytes, this.limits.pendingBytesMax),
      );
    }
    assertLog(entries.length > 0, "append needs at least one entry");
    entries.forEach((entry, i) =>
      assertLog(
        entry.index === this.nextIndex() + i,
        `entry ${entry.index} does not follow ${this.nextIndex() - 1 + i}`,
      ),
    );
    for (const entry of entries) this.accepted.push(entry.index, entry.term);
    this.pendingAppends += 1;
    this.pendingBytes += bytes;
    return this.enqueue((waiter) => ({ ...waiter, kind: "append", entries, bytes }));
  }

  /** Removes every entry >= fromIndex; `fromIndex` must be after the snapshot. */
  truncateSuffix(fromIndex: number): Promise<void> {
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    if (fromIndex > this.accepted.lastIndex())
      return this.enqueueControl("truncate", async () => {});
    this.accepted.truncateFrom(fromIndex); // asserts fromIndex is after the snapshot
    return this.enqueueControl("truncate", () => this.truncateDurable(fromIndex));
  }

  /**
   * Makes `snapshot` the base of the log: written to a temp file, fdatasynced, renamed,
   * directory fsynced; then older snapshots and segments it wholly covers are removed.
   * A snapshot past the last entry empties the log, which continues after it.
   */
  saveSnapshot(snapshot: WalSnapshot): Promise<void> {
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    if (snapshot.data.byteLength > this.limits.snapshotBytesMax) {
      return Promise.reject(
        new RecordTooLargeError(
          "snapshotBytesMax",
          snapshot.data.byteLength,
          this.limits.snapshotBytesMax,
        ),
      );
    }
    // Its file may be durable before earlier appends are: so it may cover only durable
    // entries, or the whole log (a Raft snapshot install).
    assertLog(
      snapshot.index <= this.durable.lastIndex() || snapshot.index >= this.accepted.lastIndex(),
      `snapshot ${snapshot.index} covers entries still being appended`,
    );
    const termThere = this.accepted.termAt(snapshot.index);
    assertLog(
      termThere === undefined ||
        termThere === snapshot.term ||
        snapshot.index >= this.accepted.lastIndex(),
      `snapshot term ${snapshot.term} differs from the log's ${termThere} at ${snapshot.index}: truncate first`,
    );
    this.accepted.rebase(snapshot.index, snapshot.term); // asserts it does not go back
    // The file is written while earlier appends proceed; compaction waits its turn.
    const written = this.snapshotChain.then(() =>
      writeSnapshotFile(this.options.storage, this.options.dir, snapshot),
    );
    this.snapshotChain = written.catch(() => undefined);
    const compacted = this.enqueueControl("snapshot", async () => {
      await written;
      await this.compact({
        name: snapshotName(snapshot.index),
        index: snapshot.index,
        term: snapshot.term,
      });
    });
    // Settle only once the file write is over, even when the log failed first.
    return compacted.finally(() => this.snapshotChain);
  }

  /** The snapshot and every durable entry after it, read back from disk and checked. */
  readAll(): Promise<{ snapshot: WalSnapshot | undefined; entries: WalEntry[] }> {
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    let result: { snapshot: WalSnapshot | undefined; entries: WalEntry[] } | undefined;
    return this.enqueueControl("read", async () => {
      result = await readWal(
        this.options.storage,
        this.options.dir,
        this.snapshot,
        this.segments,
        this.limits,
      );
    }).then(() => {
      assertLog(result !== undefined, "read finished without a result");
      return result;
    });
  }

  /** Finishes every call made before it, then releases the files. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    if (this.failure !== undefined) {
      return this.snapshotChain.then(() => this.releaseFile()).catch(() => undefined);
    }
    return this.enqueueControl("close", () => this.releaseFile());
  }

  /** Why the log refuses every call (it failed, or is closed), or undefined while it accepts them. */
  refusal(): Error | undefined {
    return this.failure ?? (this.closed ? new LogClosedError() : undefined);
  }

  private enqueueControl(name: string, run: () => Promise<void>): Promise<void> {
    return this.enqueue((waiter) => ({ ...waiter, kind: "control", name, run }));
  }

  private enqueue(make: (waiter: Waiter) => Op): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push(make({ resolve, reject }));
      if (!this.draining) {
        this.draining = true;
        void this.drain();
      }
    });
  }

  /** The single writer: one batch of appends or one control operation at a time. */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const head = this.queue[0];
      assertLog(head !== undefined, "queue head vanished");
      const batch: Op[] = [head];
      let bytes = head.kind === "append" ? head.bytes : 0;
      for (
        let op = this.queue[1];
        head.kind === "append" && op?.kind === "append";
        op = this.queue[batch.length]
      ) {
        if (bytes + op.bytes > this.limits.writeBytesMax) break;
        batch.push(op);
        bytes += op.bytes;
      }
      this.queue.splice(0, batch.length);
      try {
        if (this.failure !== undefined) throw this.failure;
        if (head.kind === "control") await head.run();
        else
          await this.writeEntries(batch.flatMap((op) => (op.kind === "append" ? op.entries : [])));
        for (const op of batch) op.resolve();
      } catch (error) {
        // Typed errors and broken invariants pass as they are; anything else is the disk.
        this.failure ??=
          error instanceof LogError || error instanceof AssertionError
            ? error
            : new LogIOError(
                head.kind === "control" ? head.name : "append",
                this.active?.file.path,
                {
                  cause: error,
                },
              );
        for (const op of batch) op.reject(this.failure);
      } finally {
        for (const op of batch) {
          if (op.kind === "append") {
            this.pendingAppends -= 1;
            this.pendingBytes -= op.bytes;
          }
        }
      }
    }
    this.draining = false;
  }

  private async writeEntries(entries: readonly WalEntry[]): Promise<void> {
    let i = 0;
    while (i < entries.length) {
      const first = entries[i];
      assertLog(first !== undefined, "no entry to write");
      const firstBytes = frameBytes(first.payload.byteLength);
      if (
        this.active === undefined ||
        this.active.segment.sizeBytes + firstBytes > this.limits.segmentBytesMax
      ) {
        if (this.active === undefined || this.active.segment.sizeBytes > 0)
          await this.roll(first.index);
      }
      const active = this.active;
      assertLog(active !== undefined, "no active segment");
      let end = i;
      let chunkBytes = 0;
      for (let e = entries[end]; e !== undefined; e = entries[end]) {
        const size = frameBytes(e.payload.byteLength);
        if (end > i && active.segment.sizeBytes + chunkBytes + size > this.limits.segmentBytesMax)
          break;
        chunkBytes += size;
        end += 1;
      }
      const buffer = new Uint8Array(chunkBytes);
      let offset = 0;
      let expected = this.durable.lastIndex() + 1;
      assertLog(
        active.segment.lastIndex + 1 === expected,
        "active segment is not the end of the log",
      );
      for (const e of entries.slice(i, end)) {
        assertLog(e.index === expected, `writing index ${e.index}, expected ${expected}`);
        expected += 1;
        offset = encodeFrameInto(buffer, offset, { kind: FrameKind.entry, ...e });
      }
      const startMs = performance.now();
      await active.file.append(buffer);
      await active.file.datasync();
      const durationMs = performance.now() - startMs;
      active.segment.sizeBytes += chunkBytes;
      for (const e of entries.slice(i, end)) this.durable.push(e.index, e.term);
      active.segment.lastIndex = this.durable.lastIndex();
      this.observeSync({ durationMs, entries: end - i, bytes: chunkBytes });
      i = end;
    }
  }

  /** A failing metrics hook must not fail the log: the entries are durable already. */
  private observeSync(info: WalSyncInfo): void {
    try {
      this.options.onSync?.(info);
    } catch (error) {
      this.options.logger?.warn({ error }, "decision log: onSync hook threw");
    }
  }

  /** Starts a new segment named by its first index; durable before any record goes in. */
  private async roll(firstIndex: number): Promise<void> {
    await this.releaseFile();
    const segment: SegmentState = {
      name: segmentName(firstIndex),
      firstIndex,
      lastIndex: firstIndex - 1,
      sizeBytes: 0,
    };
    assertLog(
      !this.segments.some((s) => s.name === segment.name),
      `segment ${segment.name} exists`,
    );
    const file = await this.options.storage.open(this.path(segment.name), { truncate: true });
    this.segments.push(segment);
    this.active = { segment, file };
    await this.options.storage.syncDir(this.options.dir);
  }

  /** Later segments go first (unlinked, directory fsynced), then the one holding fromIndex is cut. */
  private async truncateDurable(fromIndex: number): Promise<void> {
    await this.releaseFile();
    const doomed = this.segments.filter((s) => s.firstIndex >= fromIndex);
    if (doomed.length > 0) {
      for (const s of doomed.reverse()) await this.options.storage.unlink(this.path(s.name));
      await this.options.storage.syncDir(this.options.dir);
      this.segments.splice(this.segments.length - doomed.length);
    }
    const holder = this.segments.at(-1);
    if (holder !== undefined) {
      const path = this.path(holder.name);
      let kept = 0;
      const bytes = (await this.options.storage.readFile(path)).subarray(0, holder.sizeBytes);
      const parse = parseSegment(
        bytes,
        holder.firstIndex,
        0,
        this.limits.recordBytesMax,
        (frame) => {
          if (frame.index < fromIndex) kept += frameBytes(frame.payload.byteLength);
        },
      );
      assertLog(parse.problem === undefined, `segment ${holder.name} changed under the log`);
      this.active = { segment: holder, file: await this.options.storage.open(path) };
      if (kept < holder.sizeBytes) {
        await this.active.file.truncate(kept);
        await this.active.file.datasync();
        holder.sizeBytes = kept;
        holder.lastIndex = fromIndex - 1;
      }
    }
    this.durable.truncateFrom(fromIndex);
  }

  /** Runs after the snapshot is durable: drops the older snapshot and the segments it wholly covers. */
  private async compact(snapshot: SnapshotState): Promise<void> {
    const doomed = this.segments.filter((s) => s.lastIndex <= snapshot.index);
    if (doomed.length === this.segments.length) await this.releaseFile();
    const names = doomed.map((s) => s.name);
    if (this.snapshot !== undefined && this.snapshot.name !== snapshot.name)
      names.push(this.snapshot.name);
    for (const name of names) await this.options.storage.unlink(this.path(name));
    if (names.length > 0) await this.options.storage.syncDir(this.options.dir);
    this.segments.splice(0, doomed.length);
    this.snapshot = snapshot;
    this.durable.rebase(snapshot.index, snapshot.term);
  }

  private async releaseFile(): Promise<void> {
    const active = this.active;
    this.active = undefined;
    await active?.file.close();
  }

  private path(name: string): string {
    return joinPath(this.options.dir, name);
  }
}
