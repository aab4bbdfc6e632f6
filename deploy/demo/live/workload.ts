/**
 * The live demo's transfer workload: a few workers, each running one transfer at a time
 * through the SDK against every node's URL (the SDK follows the leader and moves on from a
 * node that does not answer). It records what each client was told, for the audit, and the
 * latency of each transfer, for the dashboard's rate and percentiles.
 */
import {
  TransactionAbortedError,
  VerdictClient,
  kafkaMessages,
  message,
  pgStatements,
  redis,
  redisOps,
  sql,
} from "../../../client/index.js";
import { liveAccounts, type LiveWorld, type Told } from "./world.js";

/** A bound on the transfers of one run: the audit keeps what each was told. */
const transfersMax = 500_000;
/** Latencies kept for the percentiles: the last ones only. */
const latencyWindowMs = 5_000;
const latenciesMax = 50_000;
const transactionTimeoutMs = 10_000;

export interface WorkloadStats {
  readonly perSecond: number;
  readonly p50Ms: number | undefined;
  readonly p99Ms: number | undefined;
  readonly committed: number;
  readonly aborted: number;
  readonly unknown: number;
}

export class Workload {
  readonly told = new Map<number, Told>();
  private next = 1;
  private running = false;
  private workers: Promise<void>[] = [];
  /** [finishedAtMs, latencyMs] of recent transfers, oldest first. */
  private recent: [number, number][] = [];

  constructor(
    private readonly client: VerdictClient,
    private readonly world: LiveWorld,
    private readonly concurrency: number,
  ) {}

  start(): void {
    this.running = true;
    this.workers = Array.from({ length: this.concurrency }, () => this.work());
  }

  /** Stops starting transfers and waits for those under way to be answered. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
  }

  stats(nowMs = Date.now()): WorkloadStats {
    while (this.recent.length > 0 && (this.recent[0]?.[0] ?? 0) < nowMs - latencyWindowMs) {
      this.recent.shift();
    }
    const lastSecond = this.recent.filter(([at]) => at >= nowMs - 1000).length;
    const sorted = this.recent.map(([, ms]) => ms).sort((x, y) => x - y);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    let committed = 0;
    let aborted = 0;
    let unknown = 0;
    for (const t of this.told.values()) {
      if (t === "committed") committed++;
      else if (t === "aborted") aborted++;
      else unknown++;
    }
    return { perSecond: lastSecond, p50Ms: at(0.5), p99Ms: at(0.99), committed, aborted, unknown };
  }

  private async work(): Promise<void> {
    while (this.running && this.next <= transfersMax) {
      const n = this.next++;
      const startedMs = Date.now();
      this.told.set(n, "unknown");
      this.told.set(n, await this.transfer(n));
      const doneMs = Date.now();
      this.recent.push([doneMs, doneMs - startedMs]);
      if (this.recent.length > latenciesMax) this.recent.shift();
    }
  }

  /** One transfer; what its client was told. */
  private async transfer(n: number): Promise<Told> {
    const from = liveAccounts[n % liveAccounts.length] ?? 0;
    const to = liveAccounts[(n * 7) % liveAccounts.length] ?? 0;
    const amount = 1 + (n % 50);
    const run = this.world.runId;
    try {
      const { xid } = await this.client.begin({ timeoutMs: transactionTimeoutMs });
      const record = "insert into live_transfers (run, transfer, amount) values ($1, $2, $3)";
      await this.client.enlist(
        xid,
        pgStatements("pg-a", [
          sql("update accounts set balance = balance - $1 where id = $2", [amount, from], {
            expectRows: 1,
          }),
          sql(record, [run, n, amount]),
        ]),
      );
      await this.client.enlist(
        xid,
        pgStatements("pg-b", [
          sql("update accounts set balance = balance + $1 where id = $2", [amount, to], {
            expectRows: 1,
          }),
          sql(record, [run, n, amount]),
        ]),
      );
      await this.client.enlist(xid, redisOps("redis", [redis.sadd(this.world.redisSet, `${n}`)]));
      const event = JSON.stringify({ transfer: n, from, to, amount });
      await this.client.enlist(
        xid,
        kafkaMessages("kafka", [message(this.world.topic, event, { key: `${n}` })]),
      );
      await this.client.commit(xid);
      return "committed";
    } catch (err) {
      // Anything but an abort leaves the outcome to the audit: a commit whose answer was lost
      // may have committed; a failure before commit was sent ends in an abort at the deadline.
      return err instanceof TransactionAbortedError ? "aborted" : "unknown";
    }
  }
}
