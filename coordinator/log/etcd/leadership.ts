/**
 * Leadership of one Verdict cluster over etcd (docs/etcd.md, "Leadership"): the election key
 * `leader` is created on this node's lease if absent; the term is its create revision.
 *
 * Demotion is by this node's monotonic clock, never by etcd telling us (a partitioned node
 * hears nothing): the lease cannot expire before TTL after the SEND time of the last renewal
 * etcd acknowledged (etcd's lessor measures from when it applied the renewal, which is later),
 * so the node demotes at that send time + TTL - margin. Demoting stops renewals and revokes the
 * lease (best effort; unreachable, it expires on its own).
 * Leadership is never decided from a serializable read: every read here is linearizable.
 */
import { performance } from "node:perf_hooks";
import type { Etcd3, IKeyValue, Watcher } from "etcd3";
import { NotLeaderError, assertLog } from "../errors.js";
import { EtcdUnavailableError } from "./errors.js";
import type { EtcdLayout } from "./layout.js";
import { renewLease } from "./lease-keepalive.js";
import { resendUntilAnswered } from "./resend.js";
import { createRevisionIs, deleteRange, get, put, revision } from "./txn.js";
import { decodeValue, encodeValue, schemas, type LeaderValue } from "./values.js";

export interface LeadershipOptions {
  readonly client: Etcd3;
  readonly layout: EtcdLayout;
  readonly nodeId: string;
  /** Where other nodes forward calls to this node. */
  readonly url: string;
  /** The leader lease's TTL (etcd counts whole seconds). */
  readonly leaseTtlSeconds: number;
  /** Demote this long before the lease could expire (covers clock-rate drift and scheduling). */
  readonly demotionMarginMs: number;
  /** Ceiling of one renewal attempt (renewalAttemptMs below usually cuts it shorter). */
  readonly requestTimeoutMs: number;
  /**
   * One client per etcd member, for renewals: a renewal stays on one member while it answers
   * and moves to the next after a failure or timeout, so a dead or stuck member costs one
   * short attempt. Absent: renewals use `client` (its pool picks a member at random).
   */
  readonly keepaliveClients?: readonly Etcd3[];
  /** Monotonic milliseconds; performance.now by default. */
  readonly clockMs?: () => number;
}

export const leadershipDefaults = {
  leaseTtlSeconds: 5,
  demotionMarginMs: 1_000,
  requestTimeoutMs: 1_000,
} as const;

/** Delay before retrying a renewal that failed (not one that was acknowledged), on the next member. */
const RENEW_RETRY_MS = 100;

/**
 * The deadline of one renewal attempt: TTL/10 (300 ms at a 3 s TTL), at least 250 ms, at most
 * `requestTimeoutMs`. Renewals go every TTL/3 and demotion comes TTL - margin after the last
 * acknowledged send, so between a missed renewal and the deadline there is room for several
 * attempts on other members — and for etcd's own election, which holds every renewal up.
 */
export function renewalAttemptMs(leaseTtlMs: number, requestTimeoutMs: number): number {
  return Math.min(requestTimeoutMs, Math.max(250, leaseTtlMs / 10));
}

/** `log-stopped`: the term's log stopped on a failure (e.g. LogConflictError) and cannot append. */
export type LostReason =
  "lease-deadline" | "lease-gone" | "superseded" | "log-stopped" | "resigned" | "closed";

export interface LeadershipEvents {
  becameLeader?(term: number): void;
  /** `lastAckSendMs`: the send time (clockMs) of the last acknowledged renewal. */
  lostLeadership?(term: number, reason: LostReason, lastAckSendMs: number): void;
}

export interface LeaderInfo {
  readonly nodeId: string;
  readonly url: string;
  readonly term: number;
}

/** One term of this node's leadership; `active` turns false exactly once. */
interface Run {
  readonly term: number;
  readonly leaseId: string;
  active: boolean;
  lastAckSendMs: number;
  demotionTimer?: NodeJS.Timeout;
  renewTimer?: NodeJS.Timeout;
}

export class Leadership {
  private run: Run | undefined;
  private campaigning = false;
  private inflightRead: Promise<void> | undefined;
  private nextRead: Promise<void> | undefined;
  private readonly listeners: LeadershipEvents[] = [];
  private readonly clockMs: () => number;
  private readonly leaseTtlMs: number;
  /** The keepalive client renewals use now (an index into `keepaliveClients`). */
  private keepaliveAt = 0;

  constructor(private readonly o: LeadershipOptions) {
    assertLog(Number.isInteger(o.leaseTtlSeconds) && o.leaseTtlSeconds >= 2, "lease TTL >= 2 s");
    this.leaseTtlMs = o.leaseTtlSeconds * 1000;
    assertLog(
      o.demotionMarginMs > 0 && o.demotionMarginMs < this.leaseTtlMs / 2,
      "demotion margin must be positive and under half the lease TTL",
    );
    this.clockMs = o.clockMs ?? (() => performance.now());
  }

  /** Registers listeners; returns the function that removes them. */
  on(events: LeadershipEvents): () => void {
    this.listeners.push(events);
    return () => {
      const at = this.listeners.indexOf(events);
      if (at >= 0) this.listeners.splice(at, 1);
    };
  }

  /** The term this node leads, or undefined. */
  get term(): number | undefined {
    return this.run?.active ? this.run.term : undefined;
  }

  /** The member (index into `keepaliveClients`) the next renewal goes to. */
  get keepaliveMember(): number {
    return this.keepaliveAt;
  }

  /** The monotonic time at which this node demotes unless a renewal is acknowledged first. */
  get demotionDeadlineMs(): number | undefined {
    return this.run?.active ? this.deadlineOf(this.run) : undefined;
  }

  /**
   * Tries to become leader: grants a lease, then creates `leader` on it only if absent.
   * Resolves with the term, or undefined when another node leads (its lease then revoked).
   * Rejects EtcdUnavailableError when etcd did not answer: the caller campaigns again later.
   */
  async campaign(): Promise<number | undefined> {
    assertLog(
      this.term === undefined && !this.campaigning,
      "campaign while leading or campaigning",
    );
    this.campaigning = true;
    try {
      return await this.tryCreateLeaderKey();
    } finally {
      this.campaigning = false;
    }
  }

  private async tryCreateLeaderKey(): Promise<number | undefined> {
    const { client, layout } = this.o;
    // The deadline counts from the grant's send time: etcd starts the TTL no earlier.
    const sentMs = this.clockMs();
    const grant = await client.leaseClient
      .leaseGrant({ TTL: this.o.leaseTtlSeconds })
      .catch((err: unknown) =>
        Promise.reject(new EtcdUnavailableError("lease grant", { cause: err })),
      );
    const leaseId = grant.ID;
    const value: LeaderValue = { version: 1, nodeId: this.o.nodeId, url: this.o.url };
    let res;
    try {
      res = await client.kv.txn({
        compare: [createRevisionIs(layout.leader, 0)],
        success: [put(layout.leader, encodeValue(value), leaseId)],
        failure: [get(layout.leader)],
      });
    } catch (err) {
      // It may have landed: revoking the lease removes the key with it (or it expires).
      await this.revoke(leaseId);
      throw new EtcdUnavailableError("campaign", { cause: err });
    }
    if (!res.succeeded) {
      await this.revoke(leaseId);
      return undefined;
    }
    const run: Run = {
      term: revision(res.header.revision),
      leaseId,
      active: true,
      lastAckSendMs: sentMs,
    };
    this.run = run;
    this.armDemotion(run);
    this.scheduleRenewal(run);
    for (const l of this.listeners) l.becameLeader?.(run.term);
    return run.term;
  }

  /** Hands leadership over: demotes, then deletes `leader` if it is still this term's. */
  async resign(): Promise<void> {
    const run = this.run;
    if (!run?.active) return;
    this.demote(run, "resigned");
    const deleteKey = () =>
      this.o.client.kv.txn({
        compare: [createRevisionIs(this.o.layout.leader, run.term)],
        success: [deleteRange(this.o.layout.leader)],
      });
    await this.untilLeaseEnd(run, deleteKey);
  }

  /**
   * Re-sends `send` after transient errors until answered or until the lease has surely
   * expired (then etcd removed the key itself): resigning and revoking are best effort.
   */
  private async untilLeaseEnd(run: Run, send: () => Promise<unknown>): Promise<void> {
    const endMs = run.lastAckSendMs + this.leaseTtlMs;
    const stopped = () =>
      this.clockMs() > endMs
        ? new EtcdUnavailableError("lease end", { cause: "expired" })
        : undefined;
    await resendUntilAnswered(send, stopped).catch(() => undefined);
  }

  /** Demotes the given term if it is still the current one (idempotent). */
  stepDown(term: number, reason: LostReason): void {
    if (this.run?.active && this.run.term === term) this.demote(this.run, reason);
  }

  /**
   * Resolves once a linearizable read SENT AFTER this call found `leader` still this term's
   * (the ReadIndex rule); concurrent callers share a read not yet sent. Rejects NotLeaderError.
   */
  confirmLeadership(): Promise<void> {
    const run = this.run;
    if (!run?.active) return Promise.reject(new NotLeaderError(undefined, run?.term ?? 0));
    if (this.nextRead !== undefined) return this.nextRead;
    const send = (): Promise<void> => {
      this.nextRead = undefined;
      const read = this.readLeadership(run);
      this.inflightRead = read;
      const clear = () => {
        if (this.inflightRead === read) this.inflightRead = undefined;
      };
      read.then(clear, clear);
      return read;
    };
    if (this.inflightRead === undefined) return send();
    this.nextRead = this.inflightRead.then(send, send);
    return this.nextRead;
  }

  private async readLeadership(run: Run): Promise<void> {
    const res = await this.o.client.kv.range({ key: this.o.layout.leader });
    const kv = res.kvs[0];
    if (kv !== undefined && revision(kv.create_revision) === run.term && run.active) return;
    this.stepDown(run.term, "superseded");
    throw new NotLeaderError(leaderOf(this.o.layout, kv)?.nodeId, run.term);
  }

  /** The current leader by a linearizable read (undefined: nobody leads). */
  async currentLeader(): Promise<LeaderInfo | undefined> {
    const res = await this.o.client.kv.range({ key: this.o.layout.leader });
    return leaderOf(this.o.layout, res.kvs[0]);
  }

  /**
   * Watches `leader` (standbys campaign when it disappears). The callback gets the new
   * leader, or undefined on deletion. A watch is a hint: decisions re-read linearizably.
   * Resolves once the watch is established; the caller cancels the watcher when done.
   */
  async watchLeader(onChange: (leader: LeaderInfo | undefined) => void): Promise<Watcher> {
    const watcher = await this.o.client.watch().key(this.o.layout.leader).create();
    watcher.on("put", (kv) => onChange(leaderOf(this.o.layout, kv)));
    watcher.on("delete", () => onChange(undefined));
    return watcher;
  }

  /** Stops leading (if leading); the lease is revoked. */
  close(): void {
    if (this.run?.active) this.demote(this.run, "closed");
  }

  private deadlineOf(run: Run): number {
    return run.lastAckSendMs + this.leaseTtlMs - this.o.demotionMarginMs;
  }

  private armDemotion(run: Run): void {
    clearTimeout(run.demotionTimer);
    const delayMs = Math.max(0, this.deadlineOf(run) - this.clockMs());
    run.demotionTimer = setTimeout(() => this.demote(run, "lease-deadline"), delayMs);
  }

  /**
   * Renews every TTL/3, so two renewals can be lost before the deadline; a failed renewal
   * is retried sooner (an etcd leader election or a dead member fails it fast).
   */
  private scheduleRenewal(run: Run, delayMs = this.leaseTtlMs / 3): void {
    run.renewTimer = setTimeout(() => void this.renewOnce(run), delayMs);
  }

  private async renewOnce(run: Run): Promise<void> {
    if (!run.active) return;
    const sentMs = this.clockMs();
    const clients = this.o.keepaliveClients ?? [];
    const client = clients[this.keepaliveAt] ?? this.o.client;
    try {
      const attemptMs = renewalAttemptMs(this.leaseTtlMs, this.o.requestTimeoutMs);
      const ttlSeconds = await renewLease(client, run.leaseId, attemptMs);
      if (!run.active) return;
      if (ttlSeconds <= 0) return this.demote(run, "lease-gone");
      run.lastAckSendMs = Math.max(run.lastAckSendMs, sentMs);
      this.armDemotion(run);
    } catch {
      // Unanswered: try again soon on the next member; the demotion timer bounds how long.
      if (clients.length > 0) this.keepaliveAt = (this.keepaliveAt + 1) % clients.length;
      if (run.active) this.scheduleRenewal(run, RENEW_RETRY_MS);
      return;
    }
    if (run.active) this.scheduleRenewal(run);
  }

  private demote(run: Run, reason: LostReason): void {
    if (!run.active) return;
    run.active = false;
    clearTimeout(run.demotionTimer);
    clearTimeout(run.renewTimer);
    for (const l of this.listeners) l.lostLeadership?.(run.term, reason, run.lastAckSendMs);
    void this.untilLeaseEnd(run, () => this.o.client.leaseClient.leaseRevoke({ ID: run.leaseId }));
  }

  private async revoke(leaseId: string): Promise<void> {
    await this.o.client.leaseClient.leaseRevoke({ ID: leaseId }).catch(() => undefined);
  }
}

export function leaderOf(layout: EtcdLayout, kv: IKeyValue | undefined): LeaderInfo | undefined {
  if (kv === undefined) return undefined;
  const value = decodeValue(schemas.leader, layout.leader, kv.value);
  return { nodeId: value.nodeId, url: value.url, term: revision(kv.create_revision) };
}
