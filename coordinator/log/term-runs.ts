/**
 * The term of every index in the log, kept as runs (terms change rarely, so a handful of
 * runs cover millions of entries). The WAL uses it to keep terms non-decreasing across
 * truncations; Raft needs `termAt` for its log-matching check.
 */
import { assertLog } from "./errors.js";

interface Run {
  readonly firstIndex: number;
  readonly term: number;
}

export class TermRuns {
  /** Runs in index order, terms strictly increasing; the log is [base+1, last]. */
  private runs: Run[] = [];

  /** @param base the index (and its term) the log starts after: the snapshot's, or 0/0. */
  constructor(
    private base: number,
    private baseTerm: number,
    private last: number = base,
  ) {}

  lastIndex(): number {
    return this.last;
  }

  lastTerm(): number {
    return this.runs.at(-1)?.term ?? this.baseTerm;
  }

  /** The term of `index`, or undefined when it is before the base or after the end. */
  termAt(index: number): number | undefined {
    if (index === this.base) return this.baseTerm;
    if (index < this.base || index > this.last) return undefined;
    for (let i = this.runs.length - 1; i >= 0; i--) {
      const run = this.runs[i];
      if (run !== undefined && run.firstIndex <= index) return run.term;
    }
    return this.baseTerm;
  }

  push(index: number, term: number): void {
    assertLog(index === this.last + 1, `index ${index} does not follow ${this.last}`);
    assertLog(term >= this.lastTerm(), `term ${term} below the last term ${this.lastTerm()}`);
    if (term !== this.lastTerm() || this.runs.length === 0)
      this.runs.push({ firstIndex: index, term });
    this.last = index;
  }

  /** Forgets every index >= fromIndex. */
  truncateFrom(fromIndex: number): void {
    assertLog(
      fromIndex > this.base && fromIndex <= this.last + 1,
      `cannot truncate from ${fromIndex}`,
    );
    this.runs = this.runs.filter((run) => run.firstIndex < fromIndex);
    this.last = fromIndex - 1;
  }

  /** Moves the base to a snapshot at (index, term); indices after it are kept when the log reaches past it. */
  rebase(index: number, term: number): void {
    assertLog(index >= this.base, `snapshot ${index} is behind the base ${this.base}`);
    if (index >= this.last) {
      this.runs = [];
      this.last = index;
    } else {
      const next = this.termAt(index + 1);
      assertLog(next !== undefined, `no term for ${index + 1}`);
      const later = this.runs.filter((run) => run.firstIndex > index + 1);
      this.runs = [{ firstIndex: index + 1, term: next }, ...later];
    }
    this.base = index;
    this.baseTerm = term;
  }
}
