/**
 * Where a call is answered in a cluster (docs/etcd.md, "Routing and reads"), in one
 * `onRequest` hook so that the rules sit in one place:
 * - a node that leads answers, unless the call targets another term (503 not-leader);
 * - a table-derived answer (every call but begin and enlist) waits for `confirmLeadership`:
 *   a linearizable etcd read sent after the call arrived (ReadIndex); a leader cut off from
 *   etcd answers 503, never a stale state;
 * - an unknown xid begun in an earlier term answers 409 aborted, reason `leader-changed`;
 * - a standby forwards to the leader, one hop; a forwarded call is never forwarded again. An
 *   event stream is not forwarded (the hop reads a whole answer before it sends it on): the
 *   standby answers not-leader with the leader's URL, where the client subscribes.
 * Health probes, metrics, the OpenAPI document and `GET /admin/v1/cluster` are every node's own.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { errorBody } from "../api/contract/errors.js";
import { xidBeganAtMs, type Xid } from "../core/ids.js";
import { forwardCall, TARGET_TERM_HEADER } from "./forward.js";
import type { LeaderInfo } from "../log/etcd/leadership.js";
import { termOfXid } from "./xid-term.js";

export interface RoutingNode {
  readonly nodeId: string;
  /** The term this node leads and serves, or undefined. */
  term(): number | undefined;
  /** The leader as last seen (a hint). */
  leader(): LeaderInfo | undefined;
  confirmLeadership(): Promise<void>;
  /** Whether the serving engine knows the xid (live or in the table). */
  knows(xid: Xid): boolean;
  readonly retentionMs: number;
  nowMs(): number;
}

const XID_PATH = /^\/(?:admin\/)?v1\/transactions\/([^/?]+)/;

export type RequestHook = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

export function installRouting(addHook: (hook: RequestHook) => void, node: RoutingNode): void {
  addHook(async (req, reply) => {
    const path = req.url.split("?")[0] ?? "";
    if (!routed(req.method, path)) return;
    const target = req.headers[TARGET_TERM_HEADER];
    const term = node.term();
    if (term === undefined) {
      const leader = node.leader();
      // One hop at most: a forwarded call that reached a non-leader stops here.
      if (
        target !== undefined ||
        leader === undefined ||
        leader.nodeId === node.nodeId ||
        isEventStream(req.method, path)
      ) {
        return notLeader(reply, leader);
      }
      try {
        return await forwardCall(req, reply, leader);
      } catch {
        // The leader as last seen did not answer: no hint (it may be gone).
        return notLeader(reply, undefined);
      }
    }
    if (target !== undefined && target !== String(term)) return notLeader(reply, node.leader());
    const xid = XID_PATH.exec(path)?.[1] as Xid | undefined;
    if (!readsTable(req.method, path)) {
      // Enlisting into a transaction that died with its leader: it is gone whatever we read.
      if (xid !== undefined && lostWithItsLeader(node, req, xid, term))
        return leaderChanged(reply, xid);
      return;
    }
    try {
      await node.confirmLeadership();
    } catch {
      return notLeader(reply, undefined);
    }
    if (node.term() !== term) return notLeader(reply, undefined);
    if (xid !== undefined && lostWithItsLeader(node, req, xid, term))
      return leaderChanged(reply, xid);
  });
}

function leaderChanged(reply: FastifyReply, xid: Xid): FastifyReply {
  return reply.code(409).send({
    ...errorBody(
      "transaction-aborted",
      `transaction ${xid} began under an earlier leader and never reached preparing`,
    ),
    xid,
    state: "aborted",
    reason: {
      code: "leader-changed",
      message: "its leader changed before it reached preparing: begin it again",
    },
  });
}

/** Everything but probes, metrics, the OpenAPI document and the cluster view. */
function routed(method: string, path: string): boolean {
  if (path === "/admin/v1/cluster" && method === "GET") return false;
  return path.startsWith("/v1/") || path.startsWith("/admin/v1/");
}

/** The Server-Sent Events routes: the decision watch and the admin stream. */
function isEventStream(method: string, path: string): boolean {
  return method === "GET" && /^\/(?:admin\/v1|v1\/transactions\/[^/]+)\/events$/.test(path);
}

/** Begin and enlist answer from the leader's memory alone; everything else from the table. */
function readsTable(method: string, path: string): boolean {
  if (method !== "POST") return true;
  return !(path === "/v1/transactions" || /^\/v1\/transactions\/[^/]+\/branches/.test(path));
}

/**
 * Unknown here, begun by an earlier term, and too young to have been finished and forgotten:
 * it never reached `preparing`, so it died with the leader that began it.
 */
function lostWithItsLeader(
  node: RoutingNode,
  req: FastifyRequest,
  xid: Xid,
  term: number,
): boolean {
  if (req.url.startsWith("/admin/") && req.method !== "GET") return false;
  const began = termOfXid(xid);
  const beganAtMs = xidBeganAtMs(xid);
  if (began === undefined || began >= term || beganAtMs === undefined) return false;
  if (node.nowMs() - beganAtMs >= node.retentionMs) return false;
  return !node.knows(xid);
}

function notLeader(reply: FastifyReply, leader: LeaderInfo | undefined): FastifyReply {
  const details = leader === undefined ? {} : { leaderId: leader.nodeId, leaderUrl: leader.url };
  return reply
    .code(503)
    .header("retry-after", "1")
    .send(errorBody("not-leader", "this node does not lead the cluster now", details));
}
