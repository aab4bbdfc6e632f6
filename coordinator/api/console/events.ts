/**
 * The admin event stream (`GET /admin/v1/events`, Server-Sent Events) the console listens to:
 * a `change` event each time the decision log's applied index moves (the console then reads
 * again what it shows), and a comment line as a heartbeat so proxies keep the stream open.
 * Events carry no transaction data: a subscriber learns only that something changed.
 *
 * Bounded: at most `subscribersMax` streams at once (the next is refused), one shared timer
 * while any is open, and a subscriber whose socket does not keep up is skipped (never
 * buffered without bound): the next change reaches it once its buffer has drained.
 */
import type { ServerResponse } from "node:http";

export interface EventHubOptions {
  readonly subscribersMax: number;
  /** How often the applied index is compared. */
  readonly pollMs: number;
  readonly heartbeatMs: number;
  readonly appliedIndex: () => number;
  readonly nowMs: () => number;
}

export class EventHub {
  private readonly subscribers = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private lastIndex = -1;
  private lastBeatMs = 0;

  constructor(private readonly o: EventHubOptions) {}

  get size(): number {
    return this.subscribers.size;
  }

  /** Whether another stream may open now. */
  hasRoom(): boolean {
    return this.subscribers.size < this.o.subscribersMax;
  }

  /** Starts the stream on `res` (headers already chosen by the caller). */
  subscribe(res: ServerResponse): void {
    this.subscribers.add(res);
    res.on("close", () => this.unsubscribe(res));
    this.send(res, changeEvent(this.o.appliedIndex()));
    this.timer ??= setInterval(() => this.tick(), this.o.pollMs);
  }

  /** Ends every stream (the server is closing: an open stream would hold it open). */
  closeAll(): void {
    for (const res of this.subscribers) res.end();
    this.subscribers.clear();
    this.stopTimer();
  }

  private unsubscribe(res: ServerResponse): void {
    this.subscribers.delete(res);
    if (this.subscribers.size === 0) this.stopTimer();
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const index = this.o.appliedIndex();
    const now = this.o.nowMs();
    let frame: string | undefined;
    if (index !== this.lastIndex) frame = changeEvent(index);
    else if (now - this.lastBeatMs >= this.o.heartbeatMs) frame = ": heartbeat\n\n";
    if (frame === undefined) return;
    this.lastIndex = index;
    this.lastBeatMs = now;
    for (const res of this.subscribers) this.send(res, frame);
  }

  private send(res: ServerResponse, frame: string): void {
    // A full socket buffer: skip this frame; the next change carries the newer index anyway.
    if (res.writableNeedDrain) return;
    res.write(frame);
  }
}

function changeEvent(appliedIndex: number): string {
  return `event: change\ndata: ${JSON.stringify({ appliedIndex })}\n\n`;
}
