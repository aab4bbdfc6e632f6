/**
 * The node's Server-Sent Events streams, one mechanism for both: the admin event stream the
 * console listens to (`GET /admin/v1/events`: a `change` event each time the decision log's
 * applied index moves; it carries no transaction data) and a transaction's decision watch
 * (`GET /v1/transactions/{xid}/events`, api/transaction-events.ts). Each stream has a `Feed`
 * the hub asks, on one shared timer, what to send next; a comment line is the heartbeat that
 * keeps proxies from closing a quiet stream.
 *
 * Bounded: at most `subscribersMax` streams at once and `perOwnerMax` per owner (a token); the
 * next is refused by the caller, which asks `refusal` first. One timer while any is open. A
 * subscriber whose socket does not keep up is not asked for its next frame (never buffered
 * without bound): its feed answers what is new once the buffer has drained.
 */
import type { ServerResponse } from "node:http";

export interface EventHubOptions {
  readonly subscribersMax: number;
  /** Streams one owner (token) may hold at once. */
  readonly perOwnerMax: number;
  /** How often each feed is asked. */
  readonly pollMs: number;
  readonly heartbeatMs: number;
  readonly nowMs: () => number;
}

/** What one stream sends: asked once at subscribe, then on every tick. */
export interface Feed {
  /** The frame to send now (none: nothing new) and whether the stream ends after it. */
  next(): { readonly frame?: string; readonly end?: boolean };
}

interface Subscriber {
  readonly feed: Feed;
  readonly owner: string;
  lastSentMs: number;
}

/** Which bound a new stream would pass. */
export type HubRefusal = "subscribersMax" | "perOwnerMax";

export class EventHub {
  private readonly subscribers = new Map<ServerResponse, Subscriber>();
  private readonly perOwner = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: EventHubOptions) {}

  get size(): number {
    return this.subscribers.size;
  }

  /** Why another stream for `owner` may not open now, or undefined when it may. */
  refusal(owner: string): HubRefusal | undefined {
    if (this.subscribers.size >= this.o.subscribersMax) return "subscribersMax";
    if ((this.perOwner.get(owner) ?? 0) >= this.o.perOwnerMax) return "perOwnerMax";
    return undefined;
  }

  /** Starts the stream on `res` (headers already written by the caller). */
  subscribe(res: ServerResponse, owner: string, feed: Feed): void {
    const sub: Subscriber = { feed, owner, lastSentMs: this.o.nowMs() };
    this.subscribers.set(res, sub);
    this.perOwner.set(owner, (this.perOwner.get(owner) ?? 0) + 1);
    res.on("close", () => this.unsubscribe(res));
    this.timer ??= setInterval(() => this.tick(), this.o.pollMs);
    this.serve(res, sub, this.o.nowMs());
  }

  /** Ends every stream (the server is closing: an open stream would hold it open). */
  closeAll(): void {
    for (const res of [...this.subscribers.keys()]) {
      this.unsubscribe(res);
      res.end();
    }
    this.stopTimer();
  }

  private unsubscribe(res: ServerResponse): void {
    const sub = this.subscribers.get(res);
    if (sub === undefined) return;
    this.subscribers.delete(res);
    const left = (this.perOwner.get(sub.owner) ?? 1) - 1;
    if (left === 0) this.perOwner.delete(sub.owner);
    else this.perOwner.set(sub.owner, left);
    if (this.subscribers.size === 0) this.stopTimer();
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const now = this.o.nowMs();
    for (const [res, sub] of [...this.subscribers]) this.serve(res, sub, now);
  }

  private serve(res: ServerResponse, sub: Subscriber, now: number): void {
    // A full socket buffer: ask again once it drained (the feed then answers what is newest).
    if (res.writableNeedDrain) return;
    const { frame, end } = sub.feed.next();
    if (frame !== undefined) {
      res.write(frame);
      sub.lastSentMs = now;
    } else if (now - sub.lastSentMs >= this.o.heartbeatMs) {
      res.write(": heartbeat\n\n");
      sub.lastSentMs = now;
    }
    if (end === true) {
      this.unsubscribe(res);
      res.end();
    }
  }
}

/** One event of a stream: its name and its data, a JSON text (which holds no line break). */
export function sseEvent(name: string, json: string): string {
  return `event: ${name}\ndata: ${json}\n\n`;
}

/** The admin stream's feed: a `change` event whenever the applied index differs from the last sent. */
export function logChangeFeed(appliedIndex: () => number): Feed {
  let last = -1;
  return {
    next() {
      const index = appliedIndex();
      if (index === last) return {};
      last = index;
      return { frame: sseEvent("change", JSON.stringify({ appliedIndex: index })) };
    },
  };
}
