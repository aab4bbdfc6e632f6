/**
 * The node's event streams as route handlers: a transaction's decision watch
 * (`GET /v1/transactions/{xid}/events`) and the console's admin stream (`GET /admin/v1/events`),
 * both on the one EventHub mechanism (console/events.ts), each with its own hub and bounds.
 *
 * The decision watch's first event is a linearizable read, answered like getTransaction (same
 * refusals: 404 for an unknown xid, 403 for another principal's transaction), so a subscriber
 * that arrives late still learns the outcome. Later events come from the leader's own table on
 * each tick, while the node still leads the term it answered the first one in: a node that
 * stops leading ends the stream rather than tell what it no longer knows (G7); the client
 * subscribes again and the new leader answers.
 */
import type { ServerResponse } from "node:http";
import type { Principal } from "../core/engine.js";
import type { Xid } from "../core/ids.js";
import { isFinished } from "../core/txn.js";
import type { TxnView } from "../core/view.js";
import { EventHub, logChangeFeed, sseEvent, type Feed } from "./console/events.js";
import { ApiError } from "./contract/errors.js";
import type { ApiToken } from "./tokens.js";
import { toApiView } from "./views.js";

/** A handler's answer that is a stream: the server hijacks the reply and hands over its socket. */
export interface StreamAnswer {
  readonly stream: (res: ServerResponse) => void;
}

export interface EventStreamDeps {
  /** The linearizable read getTransaction answers with (throws its ApiError). */
  readonly read: (principal: Principal, xid: Xid) => Promise<TxnView>;
  /** The leader's own look at a transaction, no read barrier: for the events after the first. */
  readonly peekView: (xid: Xid) => TxnView | undefined;
  /** The term this node leads and serves now (undefined: it does not lead). */
  readonly servingTerm: () => number | undefined;
  readonly appliedIndex: () => number;
  readonly limits: {
    readonly eventStreamsMax: number;
    readonly eventStreamsPerPrincipalMax: number;
  };
  readonly nowMs: () => number;
}

/** How often feeds are asked: a state change reaches a subscriber within this. */
export const eventPollMs = 250;
/** A comment line at least this often keeps proxies from closing a quiet stream. */
export const eventHeartbeatMs = 15_000;
/** Admin event streams open at once (each holds a socket). Documented in docs/configuration.md. */
export const adminStreamsMax = 32;

type StreamHandler = (ctx: {
  principal: Principal;
  token: ApiToken;
  params: Record<string, unknown>;
}) => Promise<StreamAnswer>;

export function eventStreamHandlers(d: EventStreamDeps): {
  handlers: { watchTransaction: StreamHandler; adminWatchEvents: StreamHandler };
  /** Ends every stream (the server is closing). */
  closeAll: () => void;
} {
  const hub = (subscribersMax: number, perOwnerMax: number) =>
    new EventHub({
      subscribersMax,
      perOwnerMax,
      pollMs: eventPollMs,
      heartbeatMs: eventHeartbeatMs,
      nowMs: d.nowMs,
    });
  const transactions = hub(d.limits.eventStreamsMax, d.limits.eventStreamsPerPrincipalMax);
  const admin = hub(adminStreamsMax, adminStreamsMax);
  /** 429 too-many-streams when `h` has no room for another stream of `owner`. */
  const admit = (h: EventHub, owner: string, totalLimit: string, totalMax: number) => {
    const refused = h.refusal(owner);
    if (refused === undefined) return;
    const [limit, max] =
      refused === "perOwnerMax"
        ? ["eventStreamsPerPrincipalMax", d.limits.eventStreamsPerPrincipalMax]
        : [totalLimit, totalMax];
    throw new ApiError("too-many-streams", `${max} event streams are open (${limit})`, {
      limit,
      max,
      retryAfterS: 5,
    });
  };
  const admitTransaction = (owner: string) =>
    admit(transactions, owner, "eventStreamsMax", d.limits.eventStreamsMax);
  return {
    handlers: {
      watchTransaction: async ({ principal, token, params }) => {
        const xid = params.xid as Xid;
        admitTransaction(token.id);
        const term = d.servingTerm();
        const first = await d.read(principal, xid);
        // Checked again: the read took time, and other streams may have opened meanwhile.
        admitTransaction(token.id);
        return {
          stream: (res) =>
            transactions.subscribe(res, token.id, transactionFeed(d, xid, first, term)),
        };
      },
      adminWatchEvents: ({ token }) => {
        admit(admin, token.id, "adminStreamsMax", adminStreamsMax);
        return Promise.resolve({
          stream: (res) => admin.subscribe(res, token.id, logChangeFeed(d.appliedIndex)),
        });
      },
    },
    closeAll: () => {
      transactions.closeAll();
      admin.closeAll();
    },
  };
}

/**
 * A `state` event each time the transaction's view changes, from `first` on; the stream ends
 * after a finished state, when the node no longer leads `term`, or when the table no longer
 * holds the transaction (an operator's forget: nothing more will change).
 */
function transactionFeed(
  d: Pick<EventStreamDeps, "peekView" | "servingTerm">,
  xid: Xid,
  first: TxnView,
  term: number | undefined,
): Feed {
  let pending: TxnView | undefined = first;
  let lastSent: string | undefined;
  return {
    next() {
      const view = pending ?? (d.servingTerm() === term ? d.peekView(xid) : undefined);
      pending = undefined;
      if (view === undefined) return { end: true };
      const data = toApiView(view);
      const text = JSON.stringify(data);
      if (text === lastSent) return {};
      lastSent = text;
      return { frame: sseEvent("state", text), end: isFinished(data.state) };
    },
  };
}
