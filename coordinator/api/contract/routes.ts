/**
 * The one route table. The server registers its routes from it and the OpenAPI
 * document is built from it, so the two cannot drift (a test compares them).
 * Paths are OpenAPI style (`{xid}`); `fastifyPath` gives the router's form.
 */
import type { z } from "zod";
import type { ErrorCode } from "./errors.js";
import type { Schemas } from "./schemas.js";

/** Request headers the API reads besides Authorization (case-insensitive on the wire). */
export const headerNames = {
  idempotencyKey: "Idempotency-Key",
  traceparent: "traceparent",
} as const;

/** `public`: the probes (/livez, /readyz, /healthz), which orchestrators call without a token. */
export type RouteAuth = "client" | "admin" | "public";
export type RouteMethod = "GET" | "POST";

export interface RouteSpec {
  /** Stable id: the OpenAPI operationId and the handler's name. */
  readonly id: string;
  readonly method: RouteMethod;
  readonly path: string;
  readonly auth: RouteAuth;
  readonly summary: string;
  readonly description?: string;
  readonly params?: z.ZodType;
  readonly query?: z.ZodType;
  readonly body?: z.ZodType;
  /** Success statuses and their body schemas. */
  readonly responses: Readonly<Record<number, z.ZodType>>;
  /** Error codes this route may answer with (the common ones included). */
  readonly errors: readonly ErrorCode[];
  /** Accepts an Idempotency-Key: a repeat with the same key answers the first answer. */
  readonly idempotent: boolean;
  /**
   * A Server-Sent Events stream: the 200 answer is `text/event-stream`, each event named
   * `event`, its data the 200 schema as JSON.
   */
  readonly stream?: { readonly event: string };
}

/** What any route may answer. */
const commonErrors: readonly ErrorCode[] = [
  "unauthorized",
  "rate-limited",
  "headers-too-large",
  "not-leader",
  "unavailable",
  "internal",
];
const paramErrors: readonly ErrorCode[] = ["validation-failed"];
const bodyErrors: readonly ErrorCode[] = [
  "bad-request",
  "invalid-utf8",
  "json-too-deep",
  "validation-failed",
  "body-too-large",
  "unsupported-media-type",
];
/** Routes that act on a client's transaction. */
const transactionErrors: readonly ErrorCode[] = ["forbidden", "transaction-not-found"];
const idempotentErrors: readonly ErrorCode[] = ["idempotency-key-reused", "outcome-unknown"];

function errors(...groups: (readonly ErrorCode[])[]): readonly ErrorCode[] {
  return [...new Set([...commonErrors, ...groups.flat()])];
}

export function buildRoutes(s: Schemas): readonly RouteSpec[] {
  return [
    {
      id: "beginTransaction",
      method: "POST",
      path: "/v1/transactions",
      auth: "client",
      summary: "Begin a global transaction, or run a whole one (branches, commit: true)",
      description:
        "Without `branches`: 201 with the new transaction. With `branches`: each is enlisted " +
        "as by enlistBranch, in order (any refused branch aborts the transaction and answers " +
        "its error); with `commit: true` the transaction is then committed and the answer is " +
        "commitTransaction's: 200 committed, 202 committing, 409 transaction-aborted. An " +
        "Idempotency-Key covers every step: a retry with it repeats none.",
      body: s.beginRequest,
      responses: { 201: s.transactionView, 200: s.committedView, 202: s.committingView },
      errors: errors(bodyErrors, idempotentErrors, [
        "too-many-transactions",
        "unknown-participant",
        "participant-forbidden",
        "limit-exceeded",
        "payload-too-large",
        "invalid-state",
        "transaction-aborted",
        "log-full",
      ]),
      idempotent: true,
    },
    {
      id: "getTransaction",
      method: "GET",
      path: "/v1/transactions/{xid}",
      auth: "client",
      summary: "A transaction's state, decision and branches (linearizable read)",
      params: s.xidParams,
      responses: { 200: s.transactionView },
      errors: errors(paramErrors, transactionErrors),
      idempotent: false,
    },
    {
      id: "watchTransaction",
      method: "GET",
      path: "/v1/transactions/{xid}/events",
      auth: "client",
      summary: "A transaction's state changes as Server-Sent Events, until it finishes",
      description:
        "A `state` event at once with the transaction's view (as getTransaction answers it), " +
        "then one each time the view changes; the stream ends after the event that shows " +
        "`committed` or `aborted` (a finished transaction: one event, then the end). A comment " +
        "line every 15 s keeps proxies from closing a quiet stream. The stream also ends when " +
        "this node stops leading, or stops: subscribe again (or read getTransaction). Refusals " +
        "are getTransaction's, answered before the stream starts, plus 429 too-many-streams " +
        "(`eventStreamsPerPrincipalMax`, `eventStreamsMax`). In a cluster a standby answers " +
        "503 not-leader with the leader's URL instead of forwarding the stream.",
      params: s.xidParams,
      responses: { 200: s.transactionView },
      errors: errors(paramErrors, transactionErrors, ["too-many-streams"]),
      idempotent: false,
      stream: { event: "state" },
    },
    {
      id: "enlistBranch",
      method: "POST",
      path: "/v1/transactions/{xid}/branches",
      auth: "client",
      summary: "Enlist a branch (returns its number and branch id / gid)",
      description:
        "At most one branch per participant: a second enlist on the same participant before " +
        "prepare adds its work to the first branch and answers 200 with that branch.",
      params: s.xidParams,
      body: s.enlistRequest,
      responses: { 201: s.enlistResponse, 200: s.enlistResponse },
      errors: errors(paramErrors, bodyErrors, transactionErrors, idempotentErrors, [
        "unknown-participant",
        "participant-forbidden",
        "limit-exceeded",
        "payload-too-large",
        "invalid-state",
        "transaction-aborted",
      ]),
      idempotent: true,
    },
    {
      id: "reportBranchPrepared",
      method: "POST",
      path: "/v1/transactions/{xid}/branches/{n}/prepared",
      auth: "client",
      summary: "A service-prepared branch reports that it prepared with its gid",
      params: s.branchParams,
      body: s.emptyRequest,
      responses: { 200: s.branchView },
      errors: errors(paramErrors, bodyErrors, transactionErrors, idempotentErrors, [
        "branch-not-found",
        "branch-not-prepared",
        "invalid-state",
        "transaction-aborted",
      ]),
      idempotent: true,
    },
    {
      id: "prepareTransaction",
      method: "POST",
      path: "/v1/transactions/{xid}/prepare",
      auth: "client",
      summary: "Phase 1 only: collect every branch's vote",
      description:
        "200 when every branch voted yes (state prepared; a later commit decides). A no vote " +
        "aborts the transaction: 409 transaction-aborted with the reason. Once a commit is " +
        "decided (committing, committed) there is nothing to prepare: 409 invalid-state with " +
        "`details.state`.",
      params: s.xidParams,
      body: s.emptyRequest,
      responses: { 200: s.preparedView },
      errors: errors(paramErrors, bodyErrors, transactionErrors, idempotentErrors, [
        "invalid-state",
        "transaction-aborted",
      ]),
      idempotent: true,
    },
    {
      id: "commitTransaction",
      method: "POST",
      path: "/v1/transactions/{xid}/commit",
      auth: "client",
      summary: "Commit: prepare every branch, decide, then run phase 2",
      description:
        "200 committed; 202 committing when the decision is durable and phase 2 still runs " +
        "(the effects will appear in every participant); 409 transaction-aborted with the reason.",
      params: s.xidParams,
      body: s.emptyRequest,
      responses: { 200: s.committedView, 202: s.committingView },
      errors: errors(paramErrors, bodyErrors, transactionErrors, idempotentErrors, [
        "invalid-state",
        "transaction-aborted",
      ]),
      idempotent: true,
    },
    {
      id: "abortTransaction",
      method: "POST",
      path: "/v1/transactions/{xid}/abort",
      auth: "client",
      summary: "Abort: decide abort, then roll back every branch",
      description:
        "200 aborted; 202 aborting while branches still roll back; 409 transaction-committed " +
        "when the commit decision is already durable. Repeating an abort answers the same.",
      params: s.xidParams,
      body: s.emptyRequest,
      responses: { 200: s.abortedView, 202: s.abortingView },
      errors: errors(paramErrors, bodyErrors, transactionErrors, idempotentErrors, [
        "transaction-committed",
      ]),
      idempotent: true,
    },
    {
      id: "adminListTransactions",
      method: "GET",
      path: "/admin/v1/transactions",
      auth: "admin",
      summary: "Transactions by state, in-doubt first, a page at a time",
      query: s.adminListQuery,
      responses: { 200: s.adminListResponse },
      errors: errors(paramErrors, ["forbidden"]),
      idempotent: false,
    },
    {
      id: "adminGetTransaction",
      method: "GET",
      path: "/admin/v1/transactions/{xid}",
      auth: "admin",
      summary: "A transaction with each branch's state and its log history",
      params: s.xidParams,
      responses: { 200: s.adminTransactionView },
      errors: errors(paramErrors, ["forbidden", "transaction-not-found"]),
      idempotent: false,
    },
    {
      id: "adminResolveTransaction",
      method: "POST",
      path: "/admin/v1/transactions/{xid}/resolve",
      auth: "admin",
      summary: "Resolve an in-doubt transaction heuristically (audited)",
      params: s.xidParams,
      body: s.resolveRequest,
      responses: { 200: s.adminTransactionView },
      errors: errors(paramErrors, bodyErrors, [
        "forbidden",
        "transaction-not-found",
        "branch-not-found",
        "invalid-state",
        "transaction-committed",
        "outcome-unknown",
        "unavailable",
      ]),
      // Repeating an action the log already holds answers 200 and changes nothing.
      idempotent: false,
    },
    {
      id: "adminListParticipants",
      method: "GET",
      path: "/admin/v1/participants",
      auth: "admin",
      summary: "Participants with their health and prepared branches",
      responses: { 200: s.participantsResponse },
      errors: errors(["forbidden"]),
      idempotent: false,
    },
    {
      id: "adminGetCluster",
      method: "GET",
      path: "/admin/v1/cluster",
      auth: "admin",
      summary: "Cluster status: members, leader, term, commit index, lag",
      responses: { 200: s.clusterResponse },
      errors: errors(["forbidden"]),
      idempotent: false,
    },
    {
      id: "adminListAudit",
      method: "GET",
      path: "/admin/v1/audit",
      auth: "admin",
      summary: "The audit trail: operator actions, refused admin calls, heuristic outcomes",
      query: s.auditListQuery,
      responses: { 200: s.auditListResponse },
      errors: errors(paramErrors, ["forbidden"]),
      idempotent: false,
    },
    {
      id: "adminWatchEvents",
      method: "GET",
      path: "/admin/v1/events",
      auth: "admin",
      summary: "The console's event stream: the decision log moved (Server-Sent Events)",
      description:
        "A `change` event at once and each time the decision log's applied index moves; it " +
        "carries no transaction data (read again what you show). A comment line every 15 s " +
        "keeps proxies from closing a quiet stream. Never ends by itself: it ends when the " +
        "node stops. At most 32 open at once: 429 too-many-streams.",
      responses: { 200: s.logChangeEvent },
      errors: errors(["forbidden", "too-many-streams"]),
      idempotent: false,
      stream: { event: "change" },
    },
    {
      id: "adminHandOverLeadership",
      method: "POST",
      path: "/admin/v1/cluster/leadership",
      auth: "admin",
      summary:
        "Hand leadership over once in-flight appends finish, optionally to a named live node",
      body: s.handoverRequest,
      responses: { 202: s.handoverResponse },
      errors: errors(bodyErrors, ["forbidden", "invalid-state", "not-leader", "unavailable"]),
      idempotent: false,
    },
    {
      id: "adminRunRecovery",
      method: "POST",
      path: "/admin/v1/recovery",
      auth: "admin",
      summary: "Run recovery now and report what it did",
      body: s.emptyRequest,
      responses: { 200: s.recoveryResponse },
      errors: errors(bodyErrors, ["forbidden"]),
      idempotent: false,
    },
    ...probeRoutes(s),
  ];
}

/** Probe routes: no token, no /v1 prefix (where Kubernetes and Docker look for them). */
function probeRoutes(s: Schemas): RouteSpec[] {
  return [
    {
      id: "getLiveness",
      method: "GET",
      path: "/livez",
      auth: "public",
      summary: "Liveness: the process and its event loop answer (never fails for a participant)",
      responses: { 200: s.livezResponse },
      errors: ["internal"],
      idempotent: false,
    },
    {
      id: "getReadiness",
      method: "GET",
      path: "/readyz",
      auth: "public",
      summary: "Readiness: the log is open, the node serves and is not draining",
      description:
        "503 unavailable with `details.reasons` when not ready. A participant that is down " +
        "does not make the node unready: its branches vote no, other work goes on.",
      responses: { 200: s.readyzResponse },
      errors: ["unavailable", "internal"],
      idempotent: false,
    },
    {
      id: "getHealth",
      method: "GET",
      path: "/healthz",
      auth: "public",
      summary: "Health summary: ok, degraded (a participant down) or unavailable (not ready)",
      description: "Always 200: read `status`. Probes use /livez and /readyz.",
      responses: { 200: s.healthzResponse },
      errors: ["internal"],
      idempotent: false,
    },
  ];
}

/** `/v1/transactions/{xid}` → `/v1/transactions/:xid` (fastify's form). */
export function fastifyPath(path: string): string {
  return path.replace(/\{([A-Za-z0-9_]+)\}/g, ":$1");
}

/** Names of the `{param}`s of a path, in order. */
export function pathParamNames(path: string): string[] {
  return [...path.matchAll(/\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1] ?? "");
}
