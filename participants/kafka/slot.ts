/**
 * One transactional id of the pool (docs/architecture.md §7.3): its producer, kept open
 * between transactions, and the phase-2 calls waiting for it.
 *
 * - Calls run in batches, one batch at a time: the first calls (Phase2Context.firstCall)
 *   waiting when a batch starts, up to `branchesPerTransactionMax` and `batchBytesMax` record
 *   bytes, go into one Kafka transaction (commit-batch.ts). No delay is added: a batch takes
 *   what queued while the previous one ran. A retry runs alone, so a branch that cannot be
 *   produced (an ACL missing on its topic) fails only itself after its first batch.
 * - The producer is made when the slot has none: its InitProducerId is the fence (every older
 *   producer of the id is refused from then on, and that id's earlier transaction is
 *   complete when it returns). Any failure drops the producer, so the branches retried after
 *   it check their markers under a new epoch. `fence()` makes a new one at leadership.
 * - A branch is at most once in a batch: its second call (a retry) waits for a later batch,
 *   whose marker check finds the first one's marker if it committed.
 *
 * Bounds: at most `waitingMax` calls wait; each waits at most `attemptTimeoutMs` for its batch
 * (then it is dropped, never sent), and a batch runs at most `attemptTimeoutMs` (then its
 * producer is disconnected and dropped; the branches' next calls check their markers).
 */
import type { Producer } from "kafkajs";
import type { BranchToCommit, AttemptResult } from "./commit-batch.js";
import { messageOf } from "../common/errors.js";
import { recordBytesMax } from "./payload.js";

export interface SlotOptions {
  readonly transactionalId: string;
  readonly waitingMax: number;
  readonly branchesPerTransactionMax: number;
  readonly batchBytesMax: number;
  readonly attemptTimeoutMs: number;
  /** A new producer for this id, connected, its InitProducerId done (the fence). */
  readonly open: () => Promise<Producer>;
  readonly commit: (
    producer: Producer,
    batch: readonly BranchToCommit[],
  ) => Promise<AttemptResult[]>;
}

/** Why a call failed without being attempted (`busy`, `timeout`, `closed`) or in its batch. */
export class SlotError extends Error {
  constructor(
    readonly why: "busy" | "timeout" | "closed" | "failed",
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = "SlotError";
  }
}

interface Waiting {
  readonly branch: BranchToCommit;
  readonly bytes: number;
  readonly resolve: (result: AttemptResult) => void;
  readonly reject: (err: SlotError) => void;
  readonly timer: NodeJS.Timeout;
}

export class Slot {
  private producer: Producer | undefined;
  private readonly waiting: Waiting[] = [];
  private lane: Promise<void> = Promise.resolve();
  private batchQueued = false;
  private closed = false;

  constructor(private readonly o: SlotOptions) {}

  commit(branch: BranchToCommit): Promise<AttemptResult> {
    if (this.closed) return Promise.reject(new SlotError("closed", "the participant is closed"));
    if (this.waiting.length >= this.o.waitingMax) {
      return Promise.reject(
        new SlotError("busy", `${this.waiting.length} calls wait for ${this.o.transactionalId}`),
      );
    }
    return new Promise((resolve, reject) => {
      const w: Waiting = {
        branch,
        bytes: branch.messages.reduce((sum, m) => sum + recordBytesMax(m), 0),
        resolve,
        reject,
        timer: setTimeout(() => {
          if (!this.unqueue(w)) return;
          reject(new SlotError("timeout", `waited too long for ${this.o.transactionalId}`));
        }, this.o.attemptTimeoutMs),
      };
      this.waiting.push(w);
      this.queueBatch();
    });
  }

  /** Replaces the producer with a new one (InitProducerId), after what runs now. */
  fence(): Promise<void> {
    return this.inLane(async () => {
      await this.drop();
      await this.attempt(() => Promise.resolve());
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new SlotError("closed", "the participant is closed"));
    }
    await this.drop();
  }

  private queueBatch(): void {
    if (this.batchQueued) return;
    this.batchQueued = true;
    void this.inLane(async () => {
      this.batchQueued = false; // what queues from now on goes into the next batch
      await this.runBatch(this.takeBatch());
    });
  }

  /**
   * The next batch: a retry alone (it may be what failed the last batch, and must not fail
   * others again), or else the first calls at the front of the queue, one per branch, up to
   * the bounds and the first retry.
   */
  private takeBatch(): Waiting[] {
    const batch: Waiting[] = [];
    const branchIds = new Set<string>();
    let bytes = 0;
    for (const w of this.waiting) {
      const first = w.branch.ctx.firstCall === true;
      if (batch.length > 0 && (!first || branchIds.has(w.branch.branchId))) break;
      if (batch.length >= this.o.branchesPerTransactionMax) break;
      if (batch.length > 0 && bytes + w.bytes > this.o.batchBytesMax) break;
      branchIds.add(w.branch.branchId);
      bytes += w.bytes;
      batch.push(w);
      if (!first) break;
    }
    this.waiting.splice(0, batch.length);
    for (const w of batch) clearTimeout(w.timer);
    if (this.waiting.length > 0) this.queueBatch();
    return batch;
  }

  private async runBatch(batch: readonly Waiting[]): Promise<void> {
    if (batch.length === 0) return;
    try {
      const branches = batch.map((w) => w.branch);
      const results = await this.attempt((producer) => this.o.commit(producer, branches));
      for (const [i, w] of batch.entries()) w.resolve(results[i]!);
    } catch (err) {
      const failure = err instanceof SlotError ? err : new SlotError("failed", messageOf(err), err);
      for (const w of batch) w.reject(failure);
    }
  }

  /**
   * Runs `use` on the producer (made first if there is none) within the attempt timeout. On
   * any failure or timeout the producer is dropped: whatever it left half done, the next
   * producer's InitProducerId completes or aborts.
   */
  private async attempt<T>(use: (producer: Producer) => Promise<T>): Promise<T> {
    let abandoned = false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new SlotError(
              "timeout",
              `${this.o.transactionalId}: took longer than ${this.o.attemptTimeoutMs} ms`,
            ),
          ),
        this.o.attemptTimeoutMs,
      );
    });
    const run = (async () => {
      if (this.closed) throw new SlotError("closed", "the participant is closed");
      if (this.producer === undefined) {
        const opened = await this.o.open();
        if (abandoned || this.closed) {
          await opened.disconnect().catch(() => undefined);
          throw new Error("abandoned");
        }
        this.producer = opened;
      }
      return use(this.producer);
    })();
    run.catch(() => undefined); // a late failure after the timeout is not unhandled
    try {
      return await Promise.race([run, timeout]);
    } catch (err) {
      abandoned = true;
      await this.drop();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Disconnects and forgets the producer: the next batch fences with a new one. */
  private async drop(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer?.disconnect().catch(() => undefined);
  }

  private unqueue(w: Waiting): boolean {
    const i = this.waiting.indexOf(w);
    if (i < 0) return false;
    this.waiting.splice(i, 1);
    return true;
  }

  private inLane(work: () => Promise<void>): Promise<void> {
    const run = this.lane.then(work);
    this.lane = run.catch(() => undefined);
    return run;
  }
}
