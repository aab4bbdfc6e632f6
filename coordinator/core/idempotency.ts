/**
 * Idempotency keys: what call a principal first used a key for, so that a repeat of that call
 * answers as it did and any other call with the key is refused (`idempotency-key-reused`).
 *
 * Only calls that changed something hold a key (a transaction begun, a branch enlisted, a
 * commit, prepare or abort under way): a refused call leaves nothing behind. The store is
 * bounded by count and by age, oldest first; age counts on the engine's clock (`nowMs` of its
 * inputs, or a record's `atMs`), never one of its own. Keys a log record carries are marked
 * `logged`: they are rebuilt from the log after a restart and kept across a change of leader.
 */
import type { BranchNo, Xid } from "./ids.js";
import type { TimedKey } from "./table.js";

/** An idempotency key with a fingerprint of the request (route, path, body) it came with. */
export interface Idem {
  readonly key: string;
  readonly fingerprint: string;
}

export interface KeyLimits {
  readonly idempotencyKeysMax: number;
  readonly idempotencyKeyAgeMsMax: number;
}

/** What a key was first used for. */
export interface KeyUse {
  /** Digest of the first call's route, path and body. */
  readonly fingerprint: string;
  readonly xid: Xid;
  /** The branch an enlist answered, and whether that first answer created it. */
  readonly branch?: { readonly n: BranchNo; readonly created: boolean };
  readonly logged: boolean;
}

export class IdempotencyKeys {
  /** Insertion order is age order: a key is inserted once, with the time of its first use. */
  private readonly keys = new Map<string, { use: KeyUse; atMs: number }>();

  constructor(private readonly limits: KeyLimits) {}

  get size(): number {
    return this.keys.size;
  }

  /** The first use of `principal`'s key, if it is held and not too old. */
  find(principal: string, idem: Idem | undefined, nowMs: number): KeyUse | undefined {
    if (!idem) return undefined;
    this.expire(nowMs);
    return this.keys.get(scoped(principal, idem.key))?.use;
  }

  /** A call that changed something: from now on its key answers as it did. */
  rememberCall(
    principal: string,
    idem: Idem | undefined,
    use: Pick<KeyUse, "xid" | "branch">,
    nowMs: number,
  ): void {
    if (!idem) return;
    const held = { ...use, fingerprint: idem.fingerprint, logged: false };
    this.remember(principal, idem.key, held, nowMs, nowMs);
  }

  /** Keys a record of `xid` carries (applied, or from a snapshot): aged from the record. */
  rememberLogged(xid: Xid, keys: readonly TimedKey[], nowMs: number): void {
    for (const k of keys) {
      this.remember(
        k.principal,
        k.key,
        { xid, fingerprint: k.fingerprint, logged: true },
        k.atMs,
        nowMs,
      );
    }
  }

  /** Holds `key` for `use`, first used at `atMs`; a key held for another call is replaced. */
  private remember(principal: string, key: string, use: KeyUse, atMs: number, nowMs: number): void {
    const k = scoped(principal, key);
    const held = this.keys.get(k);
    if (held && held.use.fingerprint === use.fingerprint) {
      // The same call again (a begin whose transaction is gone begins anew): it keeps its age.
      held.use = { ...use, logged: use.logged || held.use.logged };
    } else {
      this.keys.delete(k);
      this.keys.set(k, { use, atMs });
    }
    for (const oldest of this.keys.keys()) {
      if (this.keys.size <= this.limits.idempotencyKeysMax) break;
      this.keys.delete(oldest);
    }
    this.expire(nowMs);
  }

  /** Drops keys older than the age limit (from the oldest; a key replayed late may lag). */
  expire(nowMs: number): void {
    for (const [k, held] of this.keys) {
      if (held.atMs + this.limits.idempotencyKeyAgeMsMax > nowMs) return;
      this.keys.delete(k);
    }
  }

  /** Leadership lost: keys of calls only this leader's memory knew mean nothing any more. */
  dropUnlogged(): void {
    for (const [k, held] of this.keys) if (!held.use.logged) this.keys.delete(k);
  }
}

/** Keys are per principal: two callers may pick the same key. */
const scoped = (principal: string, key: string): string => `${principal}\u0000${key}`;
