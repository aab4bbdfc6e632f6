/**
 * One node of a Verdict cluster over etcd (docs/etcd.md, "Running a cluster"). Every node
 * registers `nodes/<id>` on its own lease and watches the election key; when nobody leads it
 * campaigns. The winner takes over: the term's log replays linearizably at a revision at or
 * after the term began (every earlier term's append), then one `TermWork` (a fresh engine and
 * driver) leads that term alone. Losing the term (lease deadline, an append or a read finding
 * another owner, a handover) stops that work whole: its loops end, its participant results
 * are dropped, it sends nothing more. Leadership is never decided here: `Leadership` does, on
 * its own lease clock and linearizable reads; the watch and the polled leader are hints.
 */
import { performance } from "node:perf_hooks";
import type { Etcd3, Watcher } from "etcd3";
import type { Logger } from "pino";
import type { Term } from "../core/ids.js";
import type { LogRecord } from "../core/records.js";
import { errorText } from "../driver/driver.js";
import { NotLeaderError } from "../log/errors.js";
import { EtcdDecisionLog } from "../log/etcd/etcd-decision-log.js";
import type { EtcdLayout } from "../log/etcd/layout.js";
import { Leadership, type LeaderInfo, type LostReason } from "../log/etcd/leadership.js";
import { NodeRegistration } from "../log/etcd/node-registry.js";
import { readHandover, writeHandover } from "./handover-key.js";

/**
 * The wall-clock times (epoch ms) of one takeover's steps, for the failover breakdown
 * (docs/bench-cluster.md): this node saw nobody leading (the watch's delete or the poll),
 * won the campaign, opened the log, and serves (the takeover read replayed, the term's work
 * built). Wall clock, not monotonic: the bench lines them up with its own kill time.
 */
export interface TakeoverSteps {
  readonly term: Term;
  readonly seenFreeAtMs: number;
  readonly wonAtMs: number;
  readonly openedAtMs: number;
  readonly servingAtMs: number;
}

/** One term's engine and driver, built by the node. */
export interface TermWork {
  /** Ends the term: the engine steps down, loops stop, later participant results are dropped. */
  stop(): void;
}

export interface ClusterRunnerOptions {
  readonly client: Etcd3;
  /** One client per etcd member, for lease renewals (Leadership moves off a dead member). */
  readonly keepaliveClients?: readonly Etcd3[];
  readonly layout: EtcdLayout;
  readonly nodeId: string;
  /** Where other nodes forward calls to this one. */
  readonly url: string;
  readonly leaseTtlMs: number;
  readonly demotionMarginMs: number;
  readonly requestTimeoutMs: number;
  readonly replyBytesMax: number;
  readonly logger: Logger;
  /** Builds the term's engine and driver over `log`, replays and leads; rejects to refuse. */
  lead(term: Term, log: EtcdDecisionLog<LogRecord>): Promise<TermWork>;
  /** Monotonic milliseconds. */
  readonly clockMs?: () => number;
  /** Called once this node serves a term it took over. */
  onTakeover?(steps: TakeoverSteps): void;
}

interface Serving {
  readonly term: Term;
  readonly log: EtcdDecisionLog<LogRecord>;
  readonly work: TermWork;
}

export class ClusterRunner {
  readonly leadership: Leadership;
  private readonly registration: NodeRegistration;
  private readonly clockMs: () => number;
  private watcher: Watcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private known: LeaderInfo | undefined;
  private serving: Serving | undefined;
  private campaigning = false;
  private closed = false;
  /** After handing leadership over, this node leaves the others a head start. */
  private quietUntilMs = 0;
  /** When this node last saw nobody leading (epoch ms), until it sees a leader again. */
  private seenFreeAtMs: number | undefined;

  constructor(private readonly o: ClusterRunnerOptions) {
    this.clockMs = o.clockMs ?? (() => performance.now());
    this.leadership = new Leadership({
      client: o.client,
      layout: o.layout,
      nodeId: o.nodeId,
      url: o.url,
      leaseTtlSeconds: o.leaseTtlMs / 1000,
      demotionMarginMs: o.demotionMarginMs,
      requestTimeoutMs: o.requestTimeoutMs,
      ...(o.keepaliveClients === undefined ? {} : { keepaliveClients: o.keepaliveClients }),
      clockMs: this.clockMs,
    });
    this.registration = new NodeRegistration(
      o.client,
      o.layout,
      o.nodeId,
      o.url,
      Math.max(2, o.leaseTtlMs / 1000),
    );
    this.leadership.on({ lostLeadership: (term, reason) => this.lost(term as Term, reason) });
  }

  async start(): Promise<void> {
    await this.registration.register();
    this.watcher = await this.leadership.watchLeader((leader) => {
      this.see(leader);
      if (leader === undefined) void this.campaignIfFree();
    });
    // The watch is a hint that can miss (a broken stream): a linearizable poll backs it up.
    this.poll = setInterval(() => void this.check(), this.o.leaseTtlMs / 5);
    this.poll.unref();
    // The first campaign (and takeover) runs on: the node serves (forwards) meanwhile.
    void this.check();
  }

  /** The term this node serves (its work is built), or undefined. */
  get term(): Term | undefined {
    return this.serving !== undefined && this.leadership.term === this.serving.term
      ? this.serving.term
      : undefined;
  }

  /** The leader as last seen (a hint for forwarding; the leader re-checks the term). */
  get leader(): LeaderInfo | undefined {
    return this.known;
  }

  get log(): EtcdDecisionLog<LogRecord> | undefined {
    return this.term === undefined ? undefined : this.serving?.log;
  }

  /** ReadIndex: a linearizable read sent after this call found this node leading. */
  confirmLeadership(): Promise<void> {
    const term = this.term;
    if (term === undefined) return Promise.reject(new NotLeaderError(this.known?.nodeId, 0));
    return this.leadership.confirmLeadership();
  }

  /**
   * Hands leadership over once the appends in flight have finished (at most `waitMs`); with
   * `toNodeId`, the others stay out of the election for two lease TTLs so that node wins.
   */
  async handOver(toNodeId: string | undefined, waitMs: number): Promise<{ fromTerm: Term }> {
    const s = this.serving;
    if (s === undefined || this.term !== s.term) throw new NotLeaderError(this.known?.nodeId, 0);
    if (toNodeId !== undefined) {
      await writeHandover(this.o.client, this.o.layout, {
        toNodeId,
        fromTerm: s.term,
        ttlSeconds: (2 * this.o.leaseTtlMs) / 1000,
      });
    }
    await Promise.race([s.log.settled(), new Promise((r) => setTimeout(r, waitMs).unref())]);
    this.quietUntilMs = this.clockMs() + this.o.leaseTtlMs;
    await this.leadership.resign();
    return { fromTerm: s.term };
  }

  /** Re-reads the leader linearizably; campaigns when nobody leads. */
  private async check(): Promise<void> {
    if (this.closed || this.serving !== undefined || this.campaigning) return;
    try {
      this.see(await this.leadership.currentLeader());
    } catch {
      return; // etcd unreachable: the next poll tries again
    }
    if (this.known === undefined) await this.campaignIfFree();
  }

  private see(leader: LeaderInfo | undefined): void {
    this.known = leader;
    if (leader !== undefined) this.seenFreeAtMs = undefined;
    else this.seenFreeAtMs ??= Date.now();
  }

  private async campaignIfFree(): Promise<void> {
    if (this.closed || this.serving !== undefined || this.campaigning) return;
    if (this.leadership.term !== undefined || this.clockMs() < this.quietUntilMs) return;
    this.campaigning = true;
    try {
      const handover = await readHandover(this.o.client, this.o.layout);
      if (handover !== undefined && handover.toNodeId !== this.o.nodeId) return;
      const term = await this.leadership.campaign();
      if (term !== undefined) await this.takeOver(term as Term, this.seenFreeAtMs ?? Date.now());
    } catch (e) {
      this.o.logger.warn({ err: errorText(e) }, "campaign failed; the next poll tries again");
    } finally {
      this.campaigning = false;
    }
  }

  private async takeOver(term: Term, seenFreeAtMs: number): Promise<void> {
    const wonAtMs = Date.now();
    let log: EtcdDecisionLog<LogRecord> | undefined;
    try {
      log = await EtcdDecisionLog.open<LogRecord>({
        client: this.o.client,
        layout: this.o.layout,
        leadership: this.leadership,
        replyBytesMax: this.o.replyBytesMax,
      });
      const openedAtMs = Date.now();
      const work = await this.o.lead(term, log);
      if (this.leadership.term !== term || this.closed) {
        work.stop();
        await log.close();
        return;
      }
      this.serving = { term, log, work };
      this.known = { nodeId: this.o.nodeId, url: this.o.url, term };
      const steps = { term, seenFreeAtMs, wonAtMs, openedAtMs, servingAtMs: Date.now() };
      this.o.logger.info({ ...steps, takeoverMs: steps.servingAtMs - wonAtMs }, "leading");
      this.o.onTakeover?.(steps);
      await this.registration.setRole("leader").catch(() => undefined);
    } catch (e) {
      // A gap in the log, a damaged value, or the term lost mid-takeover: refuse to lead.
      this.o.logger.error({ term, err: errorText(e) }, "refused to lead: takeover failed");
      await log?.close().catch(() => undefined);
      this.quietUntilMs = this.clockMs() + this.o.leaseTtlMs;
      await this.leadership.resign();
    }
  }

  private lost(term: Term, reason: LostReason): void {
    const s = this.serving;
    if (s === undefined || s.term !== term) return;
    this.serving = undefined;
    this.known = undefined;
    s.work.stop();
    void s.log.close().catch(() => undefined);
    this.o.logger.warn({ term, reason }, "leadership lost: stepped down");
    if (!this.closed) void this.registration.setRole("standby").catch(() => undefined);
  }

  /** Leaves the cluster: hands leadership over (if leading) and deregisters. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.poll);
    await this.watcher?.cancel().catch(() => undefined);
    await this.leadership.resign();
    this.leadership.close();
    await this.registration.close();
  }
}
