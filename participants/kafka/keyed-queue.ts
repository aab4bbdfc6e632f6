/**
 * Runs work one at a time per key (here: per transactional id), so two attempts of this
 * process never fence each other. Bounded: at most `waitingMax` calls wait per key, each at
 * most `waitMs` for its turn. Safety does not depend on it — fencing does that — only
 * progress: without it, attempts sharing an id would abort each other in turn.
 */

export class QueueWaitError extends Error {
  constructor(
    readonly key: string,
    readonly why: "full" | "timeout",
  ) {
    super(why === "full" ? `too many calls wait for ${key}` : `waited too long for ${key}`);
    this.name = "QueueWaitError";
  }
}

interface Lane {
  tail: Promise<void>;
  /** Calls registered on this key that have not finished (waiting or running). */
  calls: number;
}

export class KeyedQueue {
  private readonly lanes = new Map<string, Lane>();

  constructor(
    private readonly waitingMax: number,
    private readonly waitMs: number,
  ) {}

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const lane = this.lanes.get(key) ?? { tail: Promise.resolve(), calls: 0 };
    if (lane.calls > this.waitingMax) throw new QueueWaitError(key, "full");
    const previous = lane.tail;
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    // The next call waits for the previous one and this one, even if this one gives up.
    lane.tail = previous.then(() => mine);
    lane.calls += 1;
    this.lanes.set(key, lane);
    let timer: NodeJS.Timeout | undefined;
    try {
      const turn = await Promise.race([
        previous.then(() => true),
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), this.waitMs);
        }),
      ]);
      if (!turn) throw new QueueWaitError(key, "timeout");
      return await work();
    } finally {
      clearTimeout(timer);
      release();
      lane.calls -= 1;
      if (lane.calls === 0) this.lanes.delete(key);
    }
  }
}
