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
 *   standby answers not-leader with the leader's URL, where the client subscribes;
 * - with a forwarding secret, a call marked as forwarded (a target term, or a proof) counts as
 *   forwarded only with a valid proof; any other is refused 401, on any node (docs/tls.md).
 * Health probes, metrics, the OpenAPI document and `GET /admin/v1/cluster` are every node's own.
 */
import { pipeline, type Readable } from "node:stream";
import type { FastifyReply, FastifyRequest } from "fastify";
import { ApiError, errorBody } from "../api/contract/errors.js";
import { xidBeganAtMs, type Xid } from "../core/ids.js";
import { TARGET_TERM_HEADER, type Forwarder } from "./forward.js";
import {
  checkForward,
  digestCheckingStream,
  FORWARD_BODY_HEADER,
  FORWARD_PROOF_HEADER,
} from "./forward-proof.js";
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
  /** Whether an unknown xid begun then may have been finished and forgotten (`TxnTable`). */
  mayHaveForgotten(beganAtMs: number): boolean;
  nowMs(): number;
  readonly forwarder: Forwarder;
  /** Set with cluster.forwardSecretFile: forwarded calls must prove where they come from. */
  readonly proof?: { readonly secret: Buffer; readonly skewMs: number };
}

const XID_PATH = /^\/(?:admin\/)?v1\/transactions\/([^/?]+)/;

export type RequestHook = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
/** A `preParsing` hook: may hand the body parser another stream. */
export type BodyHook = (
  req: FastifyRequest,
  reply: FastifyReply,
  payload: Readable,
) => Promise<Readable>;

export interface RoutingHooks {
  onRequest(hook: RequestHook): void;
  preParsing(hook: BodyHook): void;
}

export function installRouting(hooks: RoutingHooks, node: RoutingNode): void {
  /** Proven forwarded calls with a body, and the SHA-256 their proof covers. */
  const bodyDigests = new WeakMap<FastifyRequest, string>();
  hooks.onRequest(async (req, reply) => {
    const path = req.url.split("?")[0] ?? "";
    if (!routed(req.method, path)) return;
    const target = req.headers[TARGET_TERM_HEADER];
    if (node.proof !== undefined && (target !== undefined || req.headers[FORWARD_PROOF_HEADER])) {
      const digest = proveForwarded(req, node.proof, node.nowMs());
      if (req.method !== "GET" && req.method !== "HEAD") bodyDigests.set(req, digest);
    }
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
        return await node.forwarder.forward(req, reply, leader);
      } catch (e) {
        if (e instanceof ApiError) throw e;
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
  // The body a proof covered must be the body that arrives (checked as it is read).
  hooks.preParsing((req, _reply, payload) => {
    const digest = bodyDigests.get(req);
    if (digest === undefined) return Promise.resolve(payload);
    const checked = digestCheckingStream(digest, forwardRefused);
    // The parser sees the check's failure, or the client's (both end the stream).
    return Promise.resolve(pipeline(payload, checked, () => undefined));
  });
}

/**
 * Checks the proof of a call marked as forwarded and returns the body digest it covers;
 * throws 401 when it is missing or wrong, so that such a call is never taken as forwarded.
 */
function proveForwarded(
  req: FastifyRequest,
  proof: NonNullable<RoutingNode["proof"]>,
  nowMs: number,
): string {
  const header = (name: string) => {
    const v = req.headers[name];
    return typeof v === "string" ? v : "";
  };
  const call = {
    method: req.method,
    url: req.url,
    term: header(TARGET_TERM_HEADER),
    bodySha256: header(FORWARD_BODY_HEADER),
  };
  const check = checkForward(proof.secret, call, header(FORWARD_PROOF_HEADER), nowMs, proof.skewMs);
  if (!check.ok) {
    req.log.warn({ url: req.url, why: check.why }, "forwarded call refused");
    throw forwardRefused();
  }
  return call.bodySha256;
}

function forwardRefused(): ApiError {
  return new ApiError(
    "unauthorized",
    "a forwarded call without a valid cluster proof (cluster.forwardSecretFile must match on every node)",
  );
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
 * Unknown here, begun by an earlier term, and after anything the log forgot (the presumed-abort
 * watermark): it never reached `preparing`, so it died with the leader that began it.
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
  return !node.knows(xid) && !node.mayHaveForgotten(beganAtMs);
}

function notLeader(reply: FastifyReply, leader: LeaderInfo | undefined): FastifyReply {
  const details = leader === undefined ? {} : { leaderId: leader.nodeId, leaderUrl: leader.url };
  return reply
    .code(503)
    .header("retry-after", "1")
    .send(errorBody("not-leader", "this node does not lead the cluster now", details));
}
