/**
 * The decision log replicated by etcd (docs/etcd.md): one instance serves one term of this
 * node's leadership. Group commit: at most one append Txn in flight; appends made meanwhile
 * wait and share the next Txn (one `log/<firstIndex>` key per batch, within etcd's request
 * size). A Txn that fails in transit is re-sent unchanged (append-txn.ts judges the outcome),
 * until it is answered or leadership is lost. Under etcd's NOSPACE alarm the batch in flight is
 * re-sent with a capped backoff until space returns (the log reports itself stalled meanwhile;
 * the node is not ready): the lease is kept, nothing queued is dropped, order is kept.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Etcd3 } from "etcd3";
import type { AppendResult, LogEntry, LogSnapshot, RecordCodec } from "../decision-log.js";
import { jsonCodec } from "../decision-log.js";
import {
  LogClosedError,
  LogError,
  LogFullError,
  NotLeaderError,
  RecordTooLargeError,
  assertLog,
} from "../errors.js";
import { holdsValue, sendAppendTxn } from "./append-txn.js";
import { BATCH_HEADER_BYTES, encodeBatch, recordBytesInBatch } from "./batch-codec.js";
import { EtcdNoSpaceError } from "./errors.js";
import type { EtcdLayout } from "./layout.js";
import type { Leadership } from "./leadership.js";
import { ensureMeta } from "./meta.js";
import { readLog } from "./replay.js";
import type { ReplicatedDecisionLog } from "./replicated-decision-log.js";
import { resendUntilAnswered } from "./resend.js";
import { writeSnapshot } from "./snapshot-write.js";

/** etcd's default --max-request-bytes (1.5 MiB); keys and Txn framing need the rest. */
export const ETCD_REQUEST_BYTES_MAX = 1.5 * 1024 * 1024;
const REQUEST_OVERHEAD_BYTES = 16 * 1024;
/** Re-sends of a batch refused by NOSPACE: doubling from the first, capped (docs/etcd.md). */
export const NOSPACE_RETRY_FIRST_MS = 100;
export const NOSPACE_RETRY_MAX_MS = 2_000;

export const etcdLogDefaults = {
  batchBytesMax: 1024 * 1024,
  chunkBytesMax: 1024 * 1024,
  pendingAppendsMax: 10_000,
  pendingBytesMax: 64 * 1024 * 1024,
  snapshotBytesMax: 256 * 1024 * 1024,
} as const;

export interface EtcdDecisionLogOptions<R> {
  readonly client: Etcd3;
  readonly layout: EtcdLayout;
  /** Must lead when the log opens; the log serves that term only. */
  readonly leadership: Leadership;
  /** The client's reply limit (client.ts); replay pages fit under it. */
  readonly replyBytesMax: number;
  readonly codec?: RecordCodec<R>;
  /** Largest `log/` value (one batch); at most etcd's request limit minus overhead. */
  readonly batchBytesMax?: number;
  readonly chunkBytesMax?: number;
  readonly pendingAppendsMax?: number;
  readonly pendingBytesMax?: number;
  readonly snapshotBytesMax?: number;
  /** After every append Txn answered: how many records and bytes it carried. */
  readonly onAppendTxn?: (records: number, bytes: number) => void;
}

interface PendingAppend {
  readonly firstIndex: number;
  readonly payloads: Uint8Array[];
  readonly bytes: number;
  readonly resolve: (r: AppendResult) => void;
  readonly reject: (e: unknown) => void;
}

/** A landed batch still in the log (after the snapshot). */
interface LandedBatch {
  readonly first: number;
  readonly last: number;
  readonly term: number;
}

type Limits = Required<
  Pick<
    EtcdDecisionLogOptions<unknown>,
    "batchBytesMax" | "chunkBytesMax" | "pendingAppendsMax" | "pendingBytesMax" | "snapshotBytesMax"
  >
>;

export class EtcdDecisionLog<R> implements ReplicatedDecisionLog<R> {
  private readonly queue: PendingAppend[] = [];
  private pendingBytes = 0;
  private inflight: Promise<void> | undefined;
  private failure: LogError | undefined;
  /** Set while the batch in flight is refused by etcd's NOSPACE alarm (it is re-sent). */
  private stalled: EtcdNoSpaceError | undefined;
  private closing = false;
  private replayed = false;
  private landed = 0;
  private nextIndex = 1;
  private batches: LandedBatch[] = [];
  private snapshotIndex = 0;
  private pointerModRevision = 0;
  private snapshotChain: Promise<void> = Promise.resolve();
  private readonly unsubscribe: () => void;

  private constructor(
    private readonly o: EtcdDecisionLogOptions<R>,
    readonly term: number,
    private readonly codec: RecordCodec<R>,
    private readonly limits: Limits,
    private readonly pageKeys: number,
  ) {
    this.unsubscribe = o.leadership.on({
      lostLeadership: (lostTerm) => {
        if (lostTerm === term) this.stop(new NotLeaderError(undefined, term));
      },
    });
  }

  static async open<R>(o: EtcdDecisionLogOptions<R>): Promise<EtcdDecisionLog<R>> {
    const term = o.leadership.term;
    if (term === undefined) throw new NotLeaderError(undefined, 0);
    const limits: Limits = {
      batchBytesMax: o.batchBytesMax ?? etcdLogDefaults.batchBytesMax,
      chunkBytesMax: o.chunkBytesMax ?? etcdLogDefaults.chunkBytesMax,
      pendingAppendsMax: o.pendingAppendsMax ?? etcdLogDefaults.pendingAppendsMax,
      pendingBytesMax: o.pendingBytesMax ?? etcdLogDefaults.pendingBytesMax,
      snapshotBytesMax: o.snapshotBytesMax ?? etcdLogDefaults.snapshotBytesMax,
    };
    const valueBytesMax = Math.max(limits.batchBytesMax, limits.chunkBytesMax);
    assertLog(
      valueBytesMax <= ETCD_REQUEST_BYTES_MAX - REQUEST_OVERHEAD_BYTES,
      `a batch or chunk of ${valueBytesMax} bytes would not fit etcd's request limit`,
    );
    const pageKeys = Math.floor(o.replyBytesMax / (valueBytesMax + REQUEST_OVERHEAD_BYTES));
    assertLog(pageKeys >= 1, "the reply limit cannot hold one batch");
    const stopped = () =>
      o.leadership.term === term ? undefined : new NotLeaderError(undefined, term);
    await resendUntilAnswered(() => ensureMeta(o.client, o.layout), stopped);
    return new EtcdDecisionLog(o, term, o.codec ?? jsonCodec<R>(), limits, pageKeys);
  }

  isLeader(): boolean {
    return this.failure === undefined && this.o.leadership.term === this.term;
  }

  /**
   * Why appends are refused (closed, failed, or leadership lost) or held back (EtcdNoSpaceError:
   * they queue and land once etcd takes writes again), for readiness probes.
   */
  refusal(): Error | undefined {
    if (this.failure !== undefined) return this.failure;
    if (this.o.leadership.term !== this.term) return new NotLeaderError(undefined, this.term);
    return this.stalled;
  }

  confirmLeadership(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.o.leadership.term !== this.term)
      return Promise.reject(new NotLeaderError(undefined, this.term));
    return this.o.leadership.confirmLeadership();
  }

  async replay(): Promise<{ snapshot?: LogSnapshot; entries: LogEntry<R>[] }> {
    if (this.failure !== undefined) throw this.failure;
    const stopped = () =>
      this.failure ??
      (this.o.leadership.term === this.term ? undefined : new NotLeaderError(undefined, this.term));
    const page = { pageKeys: this.pageKeys, replyBytesMax: this.o.replyBytesMax };
    const read = await readLog(this.o.client, this.o.layout, this.term, page, stopped);
    const base = read.snapshot?.pointer.index ?? 0;
    const entries: LogEntry<R>[] = [];
    for (const batch of read.batches) {
      batch.payloads.forEach((payload, i) => {
        const index = batch.firstIndex + i;
        if (index > base)
          entries.push({ index, term: batch.term, record: this.codec.decode(payload) });
      });
    }
    if (!this.replayed) {
      this.replayed = true;
      this.landed = entries.at(-1)?.index ?? base;
      this.nextIndex = this.landed + 1;
      this.batches = read.batches.map((b) => ({
        first: b.firstIndex,
        last: b.firstIndex + b.payloads.length - 1,
        term: b.term,
      }));
      this.snapshotIndex = base;
      this.pointerModRevision = read.snapshot?.modRevision ?? 0;
    }
    const snap = read.snapshot;
    if (snap === undefined) return { entries };
    return {
      snapshot: { index: snap.pointer.index, term: snap.pointer.term, data: snap.data },
      entries,
    };
  }

  append(records: readonly R[]): Promise<AppendResult> {
    assertLog(records.length > 0, "append needs at least one record");
    if (this.failure !== undefined) return Promise.reject(this.failure);
    assertLog(this.replayed, "replay before the first append (the takeover read)");
    const payloads = records.map((r) => this.codec.encode(r));
    const bytes = payloads.reduce((sum, p) => sum + recordBytesInBatch(p.byteLength), 0);
    const { batchBytesMax, pendingAppendsMax, pendingBytesMax } = this.limits;
    if (BATCH_HEADER_BYTES + bytes > batchBytesMax)
      return Promise.reject(
        new RecordTooLargeError("recordBytesMax", BATCH_HEADER_BYTES + bytes, batchBytesMax),
      );
    if (this.queue.length >= pendingAppendsMax)
      return Promise.reject(
        new LogFullError("pendingAppendsMax", this.queue.length, pendingAppendsMax),
      );
    if (this.pendingBytes + bytes > pendingBytesMax)
      return Promise.reject(
        new LogFullError("pendingBytesMax", this.pendingBytes, pendingBytesMax),
      );
    // Indices are taken synchronously, so concurrent appends are numbered in call order.
    const firstIndex = this.nextIndex;
    this.nextIndex += payloads.length;
    this.pendingBytes += bytes;
    return new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ firstIndex, payloads, bytes, resolve, reject });
      this.pump();
    });
  }

  /** Sends the next batch unless one is in flight: the appends queued so far that fit. */
  private pump(): void {
    if (this.inflight !== undefined || this.queue.length === 0 || this.failure !== undefined)
      return;
    const taken: PendingAppend[] = [];
    let bytes = BATCH_HEADER_BYTES;
    for (const next of this.queue) {
      if (taken.length > 0 && bytes + next.bytes > this.limits.batchBytesMax) break;
      taken.push(next);
      bytes += next.bytes;
    }
    this.queue.splice(0, taken.length);
    const first = taken[0];
    assertLog(
      first !== undefined && first.firstIndex === this.landed + 1,
      "batch does not follow the log",
    );
    const payloads = taken.flatMap((a) => a.payloads);
    const value = encodeBatch({ term: this.term, firstIndex: first.firstIndex, payloads });
    this.inflight = this.land(first.firstIndex, value).then(
      () => this.landedBatch(taken, payloads.length, value.length),
      (err: unknown) => this.failedBatch(taken, err),
    );
  }

  private async land(index: number, value: Buffer): Promise<void> {
    const { client, layout } = this.o;
    const stopped = () => this.failure;
    // Bounded by `stopped` (leadership lost, the log stopped) and by `close`.
    for (let attempt = 0; ; attempt++) {
      try {
        await resendUntilAnswered(
          () => sendAppendTxn(client, layout, this.term, index, value),
          stopped,
        );
        break;
      } catch (err) {
        // Under NOSPACE every write is refused; a linearizable read tells whether an earlier
        // send landed before the alarm (a put applied after it is refused on every member).
        if (!(err instanceof EtcdNoSpaceError)) throw err;
        if (await resendUntilAnswered(() => holdsValue(client, layout, index, value), stopped))
          break;
        // Not a stop: the same batch at the same index is sent again once space may be back.
        this.stalled ??= err;
        if (this.closing) throw new LogClosedError();
        await sleep(
          Math.min(NOSPACE_RETRY_MAX_MS, NOSPACE_RETRY_FIRST_MS * 2 ** Math.min(attempt, 8)),
        );
      }
    }
    this.stalled = undefined;
  }

  private landedBatch(taken: PendingAppend[], records: number, bytes: number): void {
    this.inflight = undefined;
    const first = this.landed + 1;
    this.landed += records;
    this.batches.push({ first, last: this.landed, term: this.term });
    this.o.onAppendTxn?.(records, bytes);
    for (const a of taken) {
      this.pendingBytes -= a.bytes;
      a.resolve({
        firstIndex: a.firstIndex,
        lastIndex: a.firstIndex + a.payloads.length - 1,
        term: this.term,
      });
    }
    this.pump();
  }

  private failedBatch(taken: PendingAppend[], err: unknown): void {
    this.inflight = undefined;
    const rejectAll = (error: unknown) => {
      for (const a of [...taken, ...this.queue.splice(0)]) {
        this.pendingBytes -= a.bytes;
        a.reject(error);
      }
    };
    // A log that cannot append must not keep the lease: this node demotes, so its term's
    // engine is dropped and a fresh takeover (here or elsewhere) replays what landed.
    const reason = err instanceof NotLeaderError ? "superseded" : "log-stopped";
    this.stop(err instanceof LogError ? err : new NotLeaderError(undefined, this.term));
    this.o.leadership.stepDown(this.term, reason);
    rejectAll(this.failure);
  }

  /** Stops appending for good; appends not yet sent are rejected with `error`. */
  private stop(error: LogError): void {
    this.failure ??= error;
    for (const a of this.queue.splice(0)) {
      this.pendingBytes -= a.bytes;
      a.reject(this.failure);
    }
  }

  saveSnapshot(index: number, data: Uint8Array): Promise<void> {
    const next = this.snapshotChain.then(() => this.saveSnapshotNow(index, data));
    this.snapshotChain = next.catch(() => undefined);
    return next;
  }

  private async saveSnapshotNow(index: number, data: Uint8Array): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    assertLog(index <= this.landed, `snapshot at ${index} is past the log's end ${this.landed}`);
    if (index <= this.snapshotIndex) return;
    if (data.byteLength > this.limits.snapshotBytesMax)
      throw new RecordTooLargeError(
        "snapshotBytesMax",
        data.byteLength,
        this.limits.snapshotBytesMax,
      );
    const holding = this.batches.find((b) => b.first <= index && index <= b.last);
    assertLog(holding !== undefined, `no batch holds index ${index}`);
    const straddling = this.batches.find((b) => b.last > index);
    this.pointerModRevision = await writeSnapshot(
      this.o.client,
      this.o.layout,
      {
        term: this.term,
        index,
        entryTerm: holding.term,
        data,
        pointerModRevision: this.pointerModRevision,
        cutBeforeIndex: straddling?.first ?? index + 1,
        chunkBytesMax: this.limits.chunkBytesMax,
      },
      () => this.failure,
    );
    this.snapshotIndex = index;
    this.batches = this.batches.filter((b) => b.last > index);
  }

  /** A landed entry is committed: only entries that never existed can be "removed". */
  truncateSuffix(fromIndex: number): Promise<void> {
    assertLog(
      fromIndex >= this.nextIndex,
      `cannot remove landed or pending entries from ${fromIndex}`,
    );
    return Promise.resolve();
  }

  lastIndex(): number {
    return this.landed;
  }

  /** Resolves once no append is queued or in flight (a handover waits for it). */
  async settled(): Promise<void> {
    // Each round lands or fails one batch, and appends stop once leadership is handed over.
    while (this.inflight !== undefined) await this.inflight;
  }

  /** For the cluster view: the snapshot's index and how many `log/` keys follow it. */
  stats(): { snapshotIndex: number; logKeys: number } {
    return { snapshotIndex: this.snapshotIndex, logKeys: this.batches.length };
  }

  async close(): Promise<void> {
    // Each round lands or fails one batch (a batch held back by NOSPACE fails on `closing`);
    // failure empties the queue: bounded.
    this.closing = true;
    while (this.inflight !== undefined) await this.inflight;
    await this.snapshotChain;
    this.stop(new LogClosedError());
    this.unsubscribe();
  }
}
