/**
 * The HTTP layer: routes registered from the contract's one route table, bearer-token
 * authentication, validation with the contract's schemas, and the mapping of engine replies
 * to statuses and bodies — the only place that knows HTTP statuses.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import Fastify, { type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { z } from "zod";
import type { AdminFacts, Principal, Reply } from "../core/engine.js";
import type { Xid } from "../core/ids.js";
import type { RecoveryResult, ResolveCall } from "../driver/driver.js";
import { ParticipantCallError } from "../driver/errors.js";
import type { TxnView } from "../core/view.js";
import { ApiError, errorBody, validationFailed, type ErrorCode } from "./contract/errors.js";
import { buildOpenApiDocument } from "./contract/openapi.js";
import { buildRoutes, fastifyPath, type RouteSpec } from "./contract/routes.js";
import {
  branchPayloadBytes,
  participantNamePattern,
  type AdminListQuery,
  type ClusterResponse,
  type HandoverResponse,
  type EnlistCommand,
  type ParticipantsResponse,
  type ResolveRequest,
  type Schemas,
} from "./contract/schemas.js";
import { healthRoutes, type NodeHealth } from "./health.js";
import { toAdminSummary, toAdminView, toApiView } from "./views.js";
import { inRequestSpan } from "../telemetry/tracing.js";
import { bearerOf, matchesDigest, secretDigest } from "./bearer.js";
import { parseJsonBody, writeClientError, type StringParser } from "./wire.js";
import { metricsHandler } from "./metrics-route.js";
import { methodNotAllowedHook } from "./methods.js";
import { inFlightPerPrincipalMax } from "./contract/limits.js";
import { PrincipalLimits, type BeginSlot } from "./principal-limits.js";

export interface ApiToken {
  readonly id: string;
  readonly secret: string;
  readonly role: "client" | "admin";
  readonly participants?: readonly string[];
}

/** What the routes need from the node; the admin and cluster routes add to it later. */
export interface ApiBackend {
  readonly participantKinds: ReadonlyMap<string, "postgres" | "redis" | "kafka">;
  call(input: BackendCall): Promise<Reply>;
  view(xid: Xid): TxnView | undefined;
  principalOf(xid: Xid): string | undefined;
  adminFacts(xid: Xid): AdminFacts | undefined;
  adminList(): AdminFacts[];
  resolve(input: ResolveCall): Promise<Reply>;
  runRecovery(): Promise<RecoveryResult>;
  participants(): Promise<ParticipantsResponse>;
  cluster(): Promise<ClusterResponse>;
  /** Hands leadership over (etcd mode); a refusal names its API error code. */
  handOver(
    to: string | undefined,
  ): Promise<
    | { ok: true; answer: HandoverResponse }
    | { ok: false; code: "invalid-state" | "not-leader" | "unavailable"; message: string }
  >;
  newXid(): Xid;
  /**
   * Whether the participant holds this service-prepared branch prepared (a no-vote's detail if
   * not); rejects with ParticipantCallError when the participant cannot answer.
   */
  checkServicePrepared(participant: string, branchId: string): Promise<string | undefined>;
  metricsText(): Promise<string>;
  /** Records one answered request: its route (or path), status and latency. */
  observeRoute(route: string, status: number, seconds: number): void;
  readonly health: NodeHealth;
  readonly metricsContentType: string;
}

export type BackendCall =
  | {
      type: "begin";
      principal: Principal;
      xid: Xid;
      timeoutMs: number;
      labels: Record<string, string>;
      idem?: { key: string; fingerprint: string };
    }
  | {
      type: "enlist";
      principal: Principal;
      xid: Xid;
      participant: string;
      kind: "postgres" | "redis" | "kafka";
      payload: unknown;
      payloadBytes: number;
      idem?: { key: string; fingerprint: string };
    }
  | { type: "report-prepared"; principal: Principal; xid: Xid; n: number; idem?: Idem }
  | { type: "prepare" | "commit" | "abort"; principal: Principal; xid: Xid; idem?: Idem };

type Idem = { key: string; fingerprint: string };

type Handler = (ctx: {
  principal: Principal;
  token: ApiToken;
  /** Set on begin: the principal's quota slot, freed with the xid it began. */
  slot?: BeginSlot;
  params: Record<string, unknown>;
  body: unknown;
  query: unknown;
  idem?: { key: string; fingerprint: string };
}) => Promise<{ status: number; body: unknown }>;

export interface MetricsServing {
  /** How long one rendering of /metrics serves every scrape. */
  readonly cacheMs: number;
  readonly token?: string;
  /** False when /metrics has a listener of its own (the API's then answers 404). */
  readonly onApiListener: boolean;
}

export function buildServer(opts: {
  backend: ApiBackend;
  schemas: Schemas;
  tokens: readonly ApiToken[];
  logger: Logger;
  version: string;
  metrics: MetricsServing;
  nowMs: () => number;
}) {
  const { backend, schemas } = opts;
  const tokens = opts.tokens.map((t) => ({ token: t, digest: secretDigest(t.secret) }));
  const app = Fastify({
    // Per-request lines would drown the transaction logs: the HTTP layer logs warnings only.
    loggerInstance: opts.logger.child({ component: "http" }, { level: "warn" }),
    bodyLimit: schemas.limits.bodyBytesMax,
    // Node answers malformed requests (431: headers over its limit) before any route: in the
    // API's one error shape too.
    clientErrorHandler: writeClientError,
    // A path parameter the router will not take (over maxParamLength, bad percent-encoding)
    // is an invalid parameter, documented on every route that has one.
    frameworkErrors: (err, _req, reply) => {
      void sendError(reply, frameworkError(err));
    },
  });
  const limits = new PrincipalLimits({
    requestsPerSecond: schemas.limits.requestsPerSecondPerPrincipal,
    burst: schemas.limits.requestBurstPerPrincipal,
    inFlightMax: inFlightPerPrincipalMax(schemas.limits),
    nowMs: opts.nowMs,
    isUndecided: (xid) => {
      const state = backend.view(xid)?.state;
      return state === "active" || state === "preparing" || state === "prepared";
    },
  });
  const audit = opts.logger.child({ component: "api" });
  const handlers = makeHandlers(backend);
  const routes = buildRoutes(schemas).filter(
    (r) => handlers[r.id] !== undefined || r.auth === "public",
  );
  const openapi = buildOpenApiDocument(schemas, routes, { version: opts.version });

  // Only JSON bodies: a text/plain body answers 415 like any other media type.
  app.removeContentTypeParser("text/plain");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser(
    "application/json",
    { parseAs: "buffer" },
    // Fastify's own JSON parser (it refuses __proto__ and constructor keys) takes a callback.
    parseJsonBody(app.getDefaultJsonParser("error", "error") as StringParser),
  );
  app.setErrorHandler((err: unknown, _req, reply) => {
    if (err instanceof ApiError) return sendError(reply, err);
    const e = err as { code?: string; statusCode?: number; message?: string };
    if (e.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return sendError(
        reply,
        new ApiError("body-too-large", `body over ${schemas.limits.bodyBytesMax} bytes`),
      );
    }
    if (e.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
      return sendError(reply, new ApiError("unsupported-media-type", "send application/json"));
    }
    if (e.statusCode === 400)
      return sendError(reply, new ApiError("bad-request", e.message ?? "bad request"));
    opts.logger.error({ err }, "unexpected error");
    return sendError(reply, new ApiError("internal", "internal error"));
  });
  app.addHook(
    "onRequest",
    methodNotAllowedHook([
      ...routes.map((r) => ({ path: r.path, methods: [r.method] })),
      { path: "/openapi.json", methods: ["GET"] },
      ...(opts.metrics.onApiListener ? [{ path: "/metrics", methods: ["GET"] }] : []),
    ]),
  );
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, new ApiError("not-found", `no route ${req.method} ${req.url}`)),
  );

  // Every answer is timed, errors included, by route id (or registered path) and status.
  const routeIds = new Map(routes.map((r) => [`${r.method} ${fastifyPath(r.path)}`, r.id]));
  app.addHook("onResponse", (req, reply, done) => {
    const url = req.routeOptions.url;
    const route = url === undefined ? "unmatched" : (routeIds.get(`${req.method} ${url}`) ?? url);
    backend.observeRoute(route, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  for (const probe of healthRoutes(routes, backend.health)) app.route(probe);
  app.get("/openapi.json", () => openapi);
  if (opts.metrics.onApiListener) {
    const metrics = metricsHandler({
      source: { render: () => backend.metricsText(), contentType: backend.metricsContentType },
      cacheMs: opts.metrics.cacheMs,
      ...(opts.metrics.token === undefined ? {} : { token: opts.metrics.token }),
      nowMs: opts.nowMs,
    });
    app.get("/metrics", metrics);
  }

  for (const route of routes) {
    const handler = handlers[route.id];
    if (!handler) continue;
    app.route({
      method: route.method,
      url: fastifyPath(route.path),
      handler: async (req, reply) => {
        const token = authenticate(req, tokens);
        limits.takeRequest(token.id);
        if (route.auth === "admin" && token.role !== "admin") {
          throw new ApiError("forbidden", "this route needs an admin token");
        }
        const params = parse(route.params, req.params, "params");
        // An unknown participant is its own code, before the schema (which names the known ones).
        if (route.id === "enlistBranch") refuseUnknownParticipant(backend, req.body);
        const body = parse(route.body, req.body === undefined ? {} : req.body, "body");
        const query = parse(route.query, req.query ?? {}, "query");
        const idem = idempotency(req, route, schemas, body);
        const slot = route.id === "beginTransaction" ? limits.admitBegin(token.id) : undefined;
        const xid = (params as { xid?: string } | undefined)?.xid;
        try {
          const result = await inRequestSpan(
            route.id,
            req.headers,
            { "verdict.principal": token.id, ...(xid ? { "verdict.xid": xid } : {}) },
            () =>
              handler({
                principal: { id: token.id, admin: token.role === "admin" },
                token,
                ...(slot ? { slot } : {}),
                params: (params ?? {}) as Record<string, unknown>,
                body,
                query,
                ...(idem ? { idem } : {}),
              }),
          );
          // Admins act by hand, on any transaction: each of their actions is logged by name.
          if (token.role === "admin" && route.method === "POST") {
            audit.info(
              {
                principal: token.id,
                route: route.id,
                status: result.status,
                ...(xid ? { xid } : {}),
              },
              `${route.id} by admin ${token.id}`,
            );
          }
          return await reply.code(result.status).send(result.body);
        } finally {
          slot?.(undefined);
        }
      },
    });
  }
  return app;
}

function frameworkError(err: Error & { code?: string }): ApiError {
  if (err.code === "FST_ERR_MAX_PARAM_LENGTH" || err.code === "FST_ERR_BAD_URL") {
    return new ApiError("validation-failed", err.message, {
      issues: [{ path: "params", message: err.message }],
    });
  }
  return new ApiError("bad-request", err.message);
}

/** Every 429 says when to come back: the limit's own estimate, else one second. */
function sendError(reply: FastifyReply, err: ApiError): FastifyReply {
  if (err.status === 429) {
    const s = err.details?.retryAfterS;
    void reply.header("retry-after", String(typeof s === "number" && s >= 1 ? s : 1));
  }
  return reply.code(err.status).send(err.toBody());
}

function parse(schema: z.ZodType | undefined, value: unknown, where: string): unknown {
  if (!schema) return undefined;
  const r = schema.safeParse(value);
  if (!r.success) throw validationFailed(r.error, where);
  return r.data;
}

function authenticate(
  req: FastifyRequest,
  tokens: readonly { token: ApiToken; digest: Buffer }[],
): ApiToken {
  const given = bearerOf(req.headers.authorization);
  if (given === undefined) throw new ApiError("unauthorized", "send Authorization: Bearer <token>");
  for (const t of tokens) if (matchesDigest(given, t.digest)) return t.token;
  throw new ApiError("unauthorized", "unknown token");
}

function idempotency(
  req: FastifyRequest,
  route: RouteSpec,
  schemas: Schemas,
  body: unknown,
): { key: string; fingerprint: string } | undefined {
  const raw = req.headers["idempotency-key"];
  if (raw === undefined || !route.idempotent) return undefined;
  const key = parse(schemas.idempotencyKey, raw, "headers.idempotency-key") as string;
  const fingerprint = createHash("sha256")
    .update(`${route.id}\u0000${req.url}\u0000${JSON.stringify(body ?? null)}`)
    .digest("hex");
  return { key, fingerprint };
}

function makeHandlers(backend: ApiBackend): Record<string, Handler | undefined> {
  const xidOf = (params: Record<string, unknown>) => params.xid as Xid;
  /** A prepare, commit or abort call, with its Idempotency-Key when it came with one. */
  const xidCall = (
    type: "prepare" | "commit" | "abort",
    principal: Principal,
    params: Record<string, unknown>,
    idem: Idem | undefined,
  ): BackendCall => ({ type, principal, xid: xidOf(params), ...(idem ? { idem } : {}) });

  /** A transaction the caller may read: its own, or any for an admin. */
  const readable = (principal: Principal, xid: Xid): TxnView => {
    const owner = backend.principalOf(xid);
    const view = backend.view(xid);
    if (!view || owner === undefined)
      throw new ApiError("transaction-not-found", `no transaction ${xid}`, { xid });
    if (!principal.admin && owner !== principal.id) {
      throw new ApiError("forbidden", "the transaction belongs to another principal", { xid });
    }
    return view;
  };

  const outcome = async (
    call: BackendCall,
    ok: (view: TxnView) => { status: number; body: unknown },
  ) => {
    const reply = await backend.call(call);
    if (reply.kind === "error") throw engineError(reply);
    if (reply.kind !== "txn") throw new Error(`unexpected reply ${reply.kind}`);
    return ok(reply.view);
  };

  const aborted = (view: TxnView) => ({
    status: 409,
    body: {
      ...errorBody("transaction-aborted", view.reason?.message ?? "the transaction aborted"),
      xid: view.xid,
      state: "aborted",
      reason: toApiView(view).reason ?? { code: "presumed-abort", message: "aborted" },
    },
  });

  return {
    beginTransaction: async ({ principal, slot, body, idem }) => {
      const b = body as z.output<Schemas["beginRequest"]>;
      return outcome(
        {
          type: "begin",
          principal,
          xid: backend.newXid(),
          timeoutMs: b.timeoutMs,
          labels: b.labels,
          ...(idem ? { idem } : {}),
        },
        (view) => {
          slot?.(view.xid);
          return { status: 201, body: toApiView(view) };
        },
      );
    },
    getTransaction: ({ principal, params }) =>
      Promise.resolve({ status: 200, body: toApiView(readable(principal, xidOf(params))) }),
    enlistBranch: async ({ principal, token, params, body, idem }) => {
      const b = body as EnlistCommand;
      const kind = backend.participantKinds.get(b.participant);
      // refuseUnknownParticipant ran before the body was parsed.
      assert(kind, `participant ${b.participant} passed the unknown-participant check`);
      if (token.participants && !token.participants.includes(b.participant)) {
        throw new ApiError("participant-forbidden", `this token may not enlist ${b.participant}`, {
          participant: b.participant,
        });
      }
      const payload = payloadOf(b, kind);
      const reply = await backend.call({
        type: "enlist",
        principal,
        xid: xidOf(params),
        participant: b.participant,
        kind,
        payload,
        payloadBytes: branchPayloadBytes(b),
        ...(idem ? { idem } : {}),
      });
      if (reply.kind === "error") throw engineError(reply);
      if (reply.kind !== "branch") throw new Error(`unexpected reply ${reply.kind}`);
      return {
        status: reply.created ? 201 : 200,
        body: { branch: reply.branch, branchId: reply.branchId, participant: b.participant, kind },
      };
    },
    reportBranchPrepared: async ({ principal, params, idem }) => {
      const xid = xidOf(params);
      const n = params.n as number;
      // The engine checks the branch is a service-prepared one of a transaction still active.
      const reply = await backend.call({
        type: "report-prepared",
        principal,
        xid,
        n,
        ...(idem ? { idem } : {}),
      });
      if (reply.kind === "error") throw engineError(reply);
      const branch = toApiView(readable(principal, xid)).branches.find((b) => b.branch === n);
      if (!branch) throw new ApiError("branch-not-found", `no branch ${n}`, { xid, branch: n });
      // The vote counts only once the participant shows the branch prepared: say so now.
      const problem = await backend
        .checkServicePrepared(branch.participant, branch.branchId)
        .catch((e: unknown) => {
          if (!(e instanceof ParticipantCallError)) throw e;
          throw new ApiError("unavailable", e.message, {
            xid,
            branch: n,
            participant: e.participant,
          });
        });
      if (problem !== undefined) {
        throw new ApiError("branch-not-prepared", problem, {
          xid,
          branch: n,
          branchId: branch.branchId,
        });
      }
      return { status: 200, body: branch };
    },
    prepareTransaction: ({ principal, params, idem }) =>
      outcome(xidCall("prepare", principal, params, idem), (view) => {
        if (view.state === "aborted" || view.state === "aborting") return aborted(view);
        // Decided to commit (by a commit call): phase 1 is over, there is nothing to prepare.
        if (view.state !== "prepared") {
          throw new ApiError("invalid-state", `the transaction is ${view.state}`, {
            xid: view.xid,
            state: view.state,
          });
        }
        return { status: 200, body: toApiView(view) };
      }),
    commitTransaction: ({ principal, params, idem }) =>
      outcome(xidCall("commit", principal, params, idem), (view) => {
        if (view.state === "committed") return { status: 200, body: toApiView(view) };
        if (view.state === "committing") return { status: 202, body: toApiView(view) };
        return aborted(view);
      }),
    adminListTransactions: ({ query }) => {
      const q = query as AdminListQuery;
      const matching = backend
        .adminList()
        .filter(
          (f) =>
            (q.state === undefined || f.view.state === q.state) &&
            (q.inDoubt === undefined || f.inDoubt === q.inDoubt),
        );
      // The cursor is an offset into this ordering (in doubt first, newest first); one past
      // the end answers an empty last page.
      const start = q.cursor ?? 0;
      const page = matching.slice(start, start + q.limit);
      const next = start + page.length < matching.length ? String(start + page.length) : null;
      return Promise.resolve({
        status: 200,
        body: { transactions: page.map(toAdminSummary), nextCursor: next },
      });
    },
    adminGetTransaction: ({ params }) => {
      const xid = xidOf(params);
      const facts = backend.adminFacts(xid);
      if (!facts) throw new ApiError("transaction-not-found", `no transaction ${xid}`, { xid });
      return Promise.resolve({ status: 200, body: toAdminView(facts) });
    },
    adminResolveTransaction: async ({ principal, params, body }) => {
      const xid = xidOf(params);
      const b = body as ResolveRequest;
      // A forget leaves nothing to read afterwards: what it forgot is answered instead.
      const before = backend.adminFacts(xid);
      const reply = await backend.resolve({
        type: "resolve",
        principal,
        xid,
        action: b.action,
        reason: b.reason,
        ...(b.branch === undefined ? {} : { branch: b.branch }),
      });
      if (reply.kind === "error") throw engineError(reply);
      if (reply.kind !== "txn") throw new ApiError("internal", `resolve answered ${reply.kind}`);
      const facts = backend.adminFacts(xid) ?? (before && { ...before, view: reply.view });
      if (!facts) throw new ApiError("transaction-not-found", `no transaction ${xid}`, { xid });
      return { status: 200, body: toAdminView(facts) };
    },
    adminRunRecovery: async () => {
      const r = await backend.runRecovery();
      return {
        status: 200,
        body: {
          startedAt: new Date(r.startedAtMs).toISOString(),
          finishedAt: new Date(r.finishedAtMs).toISOString(),
          branchesFound: r.found,
          branchesCommitted: r.committed,
          branchesRolledBack: r.rolledBack,
          branchesPending: r.pending,
          branchesLeft: r.left,
          errors: r.errors.slice(0, 100).map((e) => ({
            participant: e.participant,
            message: e.message.slice(0, 4000),
          })),
        },
      };
    },
    adminListParticipants: async () => ({ status: 200, body: await backend.participants() }),
    adminGetCluster: async () => ({ status: 200, body: await backend.cluster() }),
    adminHandOverLeadership: async ({ body }) => {
      const r = await backend.handOver((body as { to?: string }).to);
      if (!r.ok) throw new ApiError(r.code, r.message);
      return { status: 202, body: r.answer };
    },
    abortTransaction: ({ principal, params, idem }) =>
      outcome(xidCall("abort", principal, params, idem), (view) => ({
        status: view.state === "aborted" ? 200 : 202,
        body: toApiView(view),
      })),
  };
}

/**
 * `unknown-participant` for an enlist body naming a participant the node does not have. Run
 * before the schema, which names the known ones: a value that cannot be a name is the schema's.
 */
function refuseUnknownParticipant(backend: ApiBackend, body: unknown): void {
  if (typeof body !== "object" || body === null || !("participant" in body)) return;
  const name = body.participant;
  if (typeof name !== "string" || !participantNamePattern.test(name)) return;
  if (backend.participantKinds.has(name)) return;
  throw new ApiError("unknown-participant", `no participant ${name}`, { participant: name });
}

/** The participant payload of an enlist body, refused when it is not this participant's kind. */
function payloadOf(b: EnlistCommand, kind: string): unknown {
  const [payload, wants] =
    "statements" in b
      ? [{ kind: "statements", statements: b.statements }, "postgres"]
      : "servicePrepared" in b
        ? [{ kind: "service-prepared" }, "postgres"]
        : "ops" in b
          ? [{ kind: "ops", ops: b.ops, preconditions: b.preconditions ?? [] }, "redis"]
          : [{ kind: "messages", messages: b.messages }, "kafka"];
  if (wants !== kind) {
    throw new ApiError(
      "validation-failed",
      `participant ${b.participant} is ${kind}; this branch's work is for ${wants}`,
      { issues: [{ path: "body", message: `work for ${wants} sent to a ${kind} participant` }] },
    );
  }
  return payload;
}

const engineCodes: Record<Extract<Reply, { kind: "error" }>["code"], ErrorCode> = {
  "transaction-not-found": "transaction-not-found",
  forbidden: "forbidden",
  "invalid-state": "invalid-state",
  "transaction-committed": "transaction-committed",
  "idempotency-key-reused": "idempotency-key-reused",
  "limit-exceeded": "limit-exceeded",
  "payload-too-large": "payload-too-large",
  "branch-not-found": "branch-not-found",
  "too-many-transactions": "too-many-transactions",
  "outcome-unknown": "outcome-unknown",
  "not-leader": "not-leader",
  unavailable: "unavailable",
};

function engineError(reply: Extract<Reply, { kind: "error" }>): ApiError {
  return new ApiError(engineCodes[reply.code], reply.message, reply.details);
}
