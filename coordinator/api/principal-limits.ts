/**
 * Fairness between principals (tokens): a token bucket of requests per principal, and a quota
 * of undecided transactions per principal, so that one client cannot take every slot of the
 * node's in-flight limit nor all of its time. Both refuse with 429 and a Retry-After.
 * Bounded: one bucket and one set per configured token; a set holds at most the quota plus
 * the begins under way, and is pruned of decided transactions when it reaches the quota.
 */
import type { Xid } from "../core/ids.js";
import { ApiError } from "./contract/errors.js";

export interface PrincipalLimitsConfig {
  readonly requestsPerSecond: number;
  readonly burst: number;
  readonly inFlightMax: number;
  readonly nowMs: () => number;
  /** Whether the transaction is begun and not yet decided (false once it is forgotten). */
  readonly isUndecided: (xid: Xid) => boolean;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

interface Begun {
  readonly xids: Set<Xid>;
  /** Begins admitted and not yet answered: they hold a slot too. */
  pending: number;
}

/** A begin admitted under the quota: `done` with the xid it began (or none) frees its slot. */
export type BeginSlot = (began: Xid | undefined) => void;

export class PrincipalLimits {
  private readonly buckets = new Map<string, Bucket>();
  private readonly begun = new Map<string, Begun>();

  constructor(private readonly cfg: PrincipalLimitsConfig) {}

  /** Takes one request from the principal's bucket; 429 `rate-limited` when it is empty. */
  takeRequest(principal: string): void {
    const now = this.cfg.nowMs();
    const b = this.buckets.get(principal) ?? { tokens: this.cfg.burst, atMs: now };
    this.buckets.set(principal, b);
    const refill = (Math.max(0, now - b.atMs) * this.cfg.requestsPerSecond) / 1000;
    b.tokens = Math.min(this.cfg.burst, b.tokens + refill);
    b.atMs = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return;
    }
    const retryAfterS = Math.max(1, Math.ceil((1 - b.tokens) / this.cfg.requestsPerSecond));
    throw new ApiError(
      "rate-limited",
      `over ${this.cfg.requestsPerSecond} requests per second (burst ${this.cfg.burst})`,
      { limit: "requestsPerSecondPerPrincipal", max: this.cfg.requestsPerSecond, retryAfterS },
    );
  }

  /** Admits a begin within the principal's quota; 429 `too-many-transactions` over it. */
  admitBegin(principal: string): BeginSlot {
    const b = this.begun.get(principal) ?? { xids: new Set<Xid>(), pending: 0 };
    this.begun.set(principal, b);
    if (b.xids.size + b.pending >= this.cfg.inFlightMax) {
      for (const xid of b.xids) if (!this.cfg.isUndecided(xid)) b.xids.delete(xid);
    }
    if (b.xids.size + b.pending >= this.cfg.inFlightMax) {
      throw new ApiError(
        "too-many-transactions",
        `principal ${principal} has ${this.cfg.inFlightMax} transactions undecided`,
        { limit: "inFlightTransactionsPerPrincipalMax", max: this.cfg.inFlightMax, retryAfterS: 1 },
      );
    }
    b.pending += 1;
    let done = false;
    return (xid) => {
      if (done) return;
      done = true;
      b.pending -= 1;
      if (xid !== undefined) b.xids.add(xid);
    };
  }
}
