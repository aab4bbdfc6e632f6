/**
 * Which branches' phase 2 keeps failing on this participant, and since when: health reports
 * degraded, naming the oldest, once one has been stuck past a bound. Bounded: at most
 * `sizeMax` branches are tracked (the oldest ones, which are the ones reported).
 */

export interface StuckBranch {
  readonly gid: string;
  readonly sinceMs: number;
  /** The last failure, for the operator. */
  readonly detail: string;
}

export class Phase2Watch {
  /** Insertion order is failure order: the first entry is the oldest. */
  private readonly failing = new Map<string, StuckBranch>();

  constructor(private readonly sizeMax: number) {}

  failed(gid: string, detail: string, nowMs: number): void {
    const known = this.failing.get(gid);
    if (known !== undefined) {
      this.failing.set(gid, { ...known, detail });
    } else if (this.failing.size < this.sizeMax) {
      this.failing.set(gid, { gid, sinceMs: nowMs, detail });
    }
  }

  succeeded(gid: string): void {
    this.failing.delete(gid);
  }

  /** The oldest branch failing for at least `afterMs`, if any. */
  stuck(nowMs: number, afterMs: number): StuckBranch | undefined {
    const oldest = this.failing.values().next();
    if (oldest.done === true) return undefined;
    return nowMs - oldest.value.sinceMs >= afterMs ? oldest.value : undefined;
  }
}
