/**
 * The HTTP layer: routes registered from the contract's one route table, bearer-token
 * authentication, validation with the contract's schemas, and the mapping of engine replies
 * to statuses and bodies — the only place that knows HTTP statuses.
 */
import assert from "node:assert/strict";
import { hash } from "node:crypto";
import Fastify, { type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { z } from "zod";
import type { AdminFacts, Principal, Reply } from "../core/engine.js";
import type { Xid } from "../core/ids.js";
import type { Call as BackendCall, RecoveryResult } from "../driver/driver.js";
import { ParticipantCallError } from "../driver/errors.js";
import type { TxnView } from "../core/view.js";
import { ApiError, errorBody, validationFailed, type ErrorCode } from "./contract/errors.js";
import { buildOpenApiDocument } from "./contract/openapi.js";
import { buildRoutes, fastifyPath, type RouteSpec } from "./contract/routes.js";
import {
  branchPayloadBytes,
  participantNamePattern,
  type AdminListQuery,
  type AuditListQuery,
  type ClusterResponse,
  type HandoverResponse,
  type EnlistCommand,
  type ParticipantKind,
  type ParticipantsResponse,
  type ResolveRequest,
  type Schemas,
} from "./contract/schemas.js";
import { healthRoutes, type NodeHealth } from "./health.js";
import { toAdminSummary, toAdminView, toApiView } from "./views.js";
import { formatCursor } from "./contract/cursor.js";
import { participantViews } from "./participant-views.js";
import { registerConsole } from "./console/routes.js";
import { eventStreamHandlers, type StreamAnswer } from "./transaction-events.js";
import type { BranchView } from "../../participants/participant.js";
import { inRequestSpan } from "../telemetry/tracing.js";
import { bearerOf } from "./bearer.js";
import { isOperator, mayCall, type ApiToken, type TokenStore } from "./tokens.js";
import { parseJsonBody, writeClientError, type StringParser } from "./wire.js";
import { boundedServer, type HttpBounds } from "./http-guards.js";
import { metricsHandler } from "./metrics-route.js";
import type { ListenerTls } from "./tls.js";
import { methodNotAllowedHook } from "./methods.js";
import { inFlightPerPrincipalMax, responseLimits } from "../config/limits.js";
import type { BranchWork } from "../../shared/branch-work.js";
import { PrincipalLimits, type BeginSlot } from "./principal-limits.js";
import type { AuditEvent, AuditLog } from "../audit/audit-log.js";

/**
 * What the routes need from the node: one `call` for everything the engine answers — client
 * calls, reads and operators' resolutions, in order with the writes — and what is not the
 * engine's: recovery scans, participants, cluster status, health and metrics.
 */
export interface ApiBackend {
  readonly participantKinds: ReadonlyMap<string, "postgres" | "redis" | "kafka">;
  call(input: BackendCall): Promise<Reply>;
  /**
   * Whether this node's table holds `xid` undecided: a hint for the per-principal quota's
   * pruning only, never an answer to a caller (those are `call`s).
   */
  isUndecided(xid: Xid): boolean;
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
  /**
   * Why begin is refused now (the log is held back by etcd's NOSPACE alarm), or undefined:
   * new work waits until transactions under way can be decided.
   */
  beginRefusal(): string | undefined;
  /** The last log index this node's table applied (0 when it does not lead). */
  appliedIndex(): number;
  /**
   * The leader's own look at a transaction, without a read barrier: the event stream's events
   * after its first (a linearizable `call`), while `servingTerm` stays the same.
   */
  peekView(xid: Xid): TxnView | undefined;
  /** The term this node leads and serves now; undefined when it does not lead. */
  servingTerm(): number | undefined;
  /** A participant's own view of one branch (read only); rejects when it cannot answer. */
  inspectBranch(participant: string, branchId: string): Promise<BranchView>;
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

export type { Call as BackendCall } from "../driver/driver.js";

type Idem = { key: string; fingerprint: string };

type Handler = (ctx: {
  /** Adds to the audit record of this call (admin routes). */
  note: (add: Partial<AuditEvent>) => void;
  principal: Principal;
  token: ApiToken;
  /** Set on begin: the principal's quota slot, freed with the xid it began. */
  slot?: BeginSlot;
  params: Record<string, unknown>;
  body: unknown;
  query: unknown;
  idem?: { key: string; fingerprint: string };
}) => Promise<{ status: number; body: unknown } | StreamAnswer>;

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
  tokens: TokenStore;
  logger: Logger;
  version: string;
  metrics: MetricsServing;
  audit: Pick<AuditLog, "append" | "page">;
  http: HttpBounds & { readonly jsonDepthMax: number };
  /** HTTPS (docs/tls.md); plain HTTP without it. */
  tls?: ListenerTls;
  nowMs: () => number;
}) {
  const { backend, schemas } = opts;
  const tokens = opts.tokens;
  const app = Fastify({
    serverFactory: (handler) => boundedServer(opts.http, handler, opts.tls),
    // The same bounds for Fastify, which would otherwise set its own on the server.
    keepAliveTimeout: opts.http.keepAliveTimeoutMs,
    requestTimeout: opts.http.requestTimeoutMs,
    connectionTimeout: opts.http.requestTimeoutMs,
    // Per-request lines would drown the transaction logs: the HTTP layer logs warnings only.
    loggerInstance: opts.logger.child({ component: "http" }, { level: "warn" }),
    // A request's logger is that one itself, not a pino child per request binding its
    // request id: building the child (its bindings through the redaction) cost about 1% of
    // the node's CPU per transfer (docs/bench.md), for warnings that are rare and carry the
    // route and xid where it matters (Verdict's own lines).
    childLoggerFactory: (logger) => logger,
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
    isUndecided: (xid) => backend.isUndecided(xid),
  });
  const audit = opts.logger.child({ component: "api" });
  /** What the audit record of an admin call says beyond its route and status. */
  const notes = new WeakMap<FastifyRequest, Partial<AuditEvent>>();
  const note = (req: FastifyRequest, add: Partial<AuditEvent>) =>
    notes.set(req, { ...notes.get(req), ...add });
  const streams = eventStreamHandlers({
    read: async (principal, xid) => {
      const reply = await backend.call({ type: "view", principal, xid });
      if (reply.kind === "error") throw engineError(reply);
      if (reply.kind !== "txn") throw new Error(`view answered ${reply.kind}`);
      return reply.view;
    },
    peekView: (xid) => backend.peekView(xid),
    servingTerm: () => backend.servingTerm(),
    appliedIndex: () => backend.appliedIndex(),
    limits: schemas.limits,
    nowMs: opts.nowMs,
  });
  const handlers: Record<string, Handler | undefined> = {
    ...makeHandlers(backend, opts.audit),
    ...streams.handlers,
  };
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
    parseJsonBody(
      app.getDefaultJsonParser("error", "error") as StringParser,
      opts.http.jsonDepthMax,
    ),
  );
  app.setErrorHandler((err: unknown, req, reply) => {
    if (err instanceof ApiError) {
      note(req, { code: err.code });
      return sendError(reply, err);
    }
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

  // Every admin action, and every refused admin call, is in the audit trail before its answer
  // leaves (docs/security.md, "Audit trail").
  app.addHook("onSend", async (req, reply, payload) => {
    const url = req.routeOptions.url;
    if (url === undefined || !url.startsWith("/admin/")) return payload;
    // Reads are recorded only when access was refused (a lookup that found nothing is not).
    if (req.method === "GET" && ![401, 403, 429].includes(reply.statusCode)) return payload;
    const n = notes.get(req) ?? {};
    const action = routeIds.get(`${req.method} ${url}`) ?? url;
    const xid = (req.params as { xid?: string } | undefined)?.xid;
    await opts.audit
      .append({
        principal: n.principal ?? null,
        action,
        status: reply.statusCode,
        ...(xid === undefined ? {} : { xid: xid.slice(0, 256) }),
        ...n,
      })
      .catch((err: unknown) => opts.logger.error({ err, action }, "audit record not written"));
    return payload;
  });
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
        note(req, { principal: token.id });
        limits.takeRequest(token.id);
        if (!mayCall(token.role, route)) {
          throw new ApiError("forbidden", `a ${token.role} token may not call ${route.id}`, {
            role: token.role,
          });
        }
        const params = parse(route.params, req.params, "params");
        // An unknown participant is its own code, before the schema (which names the known ones).
        if (route.id === "enlistBranch") refuseUnknownParticipant(backend, req.body);
        if (route.id === "beginTransaction") {
          for (const branch of branchesOf(req.body)) refuseUnknownParticipant(backend, branch);
        }
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
                note: (add) => note(req, add),
                // Any transaction: `mayCall` above already keeps auditors to admin reads.
                principal: { id: token.id, admin: token.role !== "client" },
                token,
                ...(slot ? { slot } : {}),
                params: (params ?? {}) as Record<string, unknown>,
                body,
                query,
                ...(idem ? { idem } : {}),
              }),
          );
          if ("stream" in result) return startStream(reply, result);
          // Admins act by hand, on any transaction: each of their actions is logged by name.
          if (isOperator(token.role) && route.method === "POST") {
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
  // An open stream would hold the server open: closing ends them.
  app.addHook("preClose", (done) => {
    streams.closeAll();
    done();
  });
  registerConsole(app);
  return app;
}

/** Hands the reply's socket to a stream, after the event-stream headers. */
function startStream(reply: FastifyReply, answer: StreamAnswer): FastifyReply {
  reply.hijack();
  reply.raw.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    // Proxies that buffer (nginx) pass each event on at once.
    "x-accel-buffering": "no",
  });
  answer.stream(reply.raw);
  return reply;
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

function authenticate(req: FastifyRequest, tokens: TokenStore): ApiToken {
  const given = bearerOf(req.headers.authorization);
  if (given === undefined) throw new ApiError("unauthorized", "send Authorization: Bearer <token>");
  const token = tokens.authenticate(given);
  if (token === undefined) throw new ApiError("unauthorized", "unknown token");
  return token;
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
  const fingerprint = hash(
    "sha256",
    `${route.id}\u0000${req.url}\u0000${JSON.stringify(body ?? null)}`,
    "hex",
  );
  return { key, fingerprint };
}

function makeHandlers(
  backend: ApiBackend,
  audit: Pick<AuditLog, "page">,
): Record<string, Handler | undefined> {
  const xidOf = (params: Record<string, unknown>) => params.xid as Xid;
  /** A prepare, commit or abort call, with its Idempotency-Key when it came with one. */
  const xidCall = (
    type: "prepare" | "commit" | "abort",
    principal: Principal,
    params: Record<string, unknown>,
    idem: Idem | undefined,
  ): BackendCall => ({ type, principal, xid: xidOf(params), ...(idem ? { idem } : {}) });

  /** What the engine answered, or the error it answered with. */
  const answer = async <K extends Reply["kind"]>(
    call: BackendCall,
    kind: K,
  ): Promise<Extract<Reply, { kind: K }>> => {
    const reply = await backend.call(call);
    if (reply.kind === "error") throw engineError(reply);
    if (reply.kind !== kind) throw new Error(`${call.type} answered ${reply.kind}`);
    return reply as Extract<Reply, { kind: K }>;
  };

  /** A transaction the caller may read: its own, or any for an admin. */
  const readable = async (principal: Principal, xid: Xid): Promise<TxnView> =>
    (await answer({ type: "view", principal, xid }, "txn")).view;

  /** An operator's facts about one transaction. */
  const factsOf = async (principal: Principal, xid: Xid): Promise<AdminFacts> =>
    (await answer({ type: "admin-facts", principal, xid }, "facts")).facts;

  const outcome = async (
    call: BackendCall,
    ok: (view: TxnView) => { status: number; body: unknown },
  ) => {
    return ok((await answer(call, "txn")).view);
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

  const commitAnswer = (view: TxnView) => {
    if (view.state === "committed") return { status: 200, body: toApiView(view) };
    if (view.state === "committing") return { status: 202, body: toApiView(view) };
    return aborted(view);
  };

  /** An enlist body this token may send, with its participant's kind and payload. */
  const enlistable = (token: ApiToken, b: EnlistCommand): Enlistable => {
    const kind = backend.participantKinds.get(b.participant);
    // refuseUnknownParticipant ran before the body was parsed.
    assert(kind, `participant ${b.participant} passed the unknown-participant check`);
    if (token.participants && !token.participants.includes(b.participant)) {
      throw new ApiError("participant-forbidden", `this token may not enlist ${b.participant}`, {
        participant: b.participant,
      });
    }
    return {
      participant: b.participant,
      kind,
      payload: payloadOf(b, kind),
      payloadBytes: branchPayloadBytes(b),
    };
  };

  const enlist = async (principal: Principal, xid: Xid, b: Enlistable, idem?: Idem) => {
    const reply = await backend.call({
      type: "enlist",
      principal,
      xid,
      ...b,
      ...(idem ? { idem } : {}),
    });
    if (reply.kind === "error") throw engineError(reply);
    if (reply.kind !== "branch") throw new Error(`unexpected reply ${reply.kind}`);
    return reply;
  };

  return {
    beginTransaction: async ({ principal, token, slot, body, idem }) => {
      const refusal = backend.beginRefusal();
      if (refusal !== undefined) throw new ApiError("log-full", refusal);
      const b = body as z.output<Schemas["beginRequest"]>;
      // A transaction in one request: every branch is checked before anything begins.
      const branches = (b.branches ?? []).map((branch) => enlistable(token, branch));
      const begun = await outcome(
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
      if (branches.length === 0 && !b.commit) return begun;
      // The steps of the step-by-step API, in order, each with a key derived from this
      // request's: a retry of the request with its key repeats none of them.
      const xid = (begun.body as { xid: Xid }).xid;
      // A retry finds the transaction past its enlists when the first try got that far.
      const enlisting = (await readable(principal, xid)).state === "active";
      try {
        for (const [i, branch] of enlisting ? branches.entries() : []) {
          await enlist(principal, xid, branch, derivedIdem(idem, `enlist ${i}`));
        }
      } catch (err) {
        await backend
          .call(xidCall("abort", principal, { xid }, derivedIdem(idem, "abort")))
          .catch(() => undefined);
        throw err;
      }
      if (!b.commit) {
        return { status: 201, body: toApiView(await readable(principal, xid)) };
      }
      return outcome(
        xidCall("commit", principal, { xid }, derivedIdem(idem, "commit")),
        commitAnswer,
      );
    },
    getTransaction: async ({ principal, params }) => ({
      status: 200,
      body: toApiView(await readable(principal, xidOf(params))),
    }),
    enlistBranch: async ({ principal, token, params, body, idem }) => {
      const branch = enlistable(token, body as EnlistCommand);
      const reply = await enlist(principal, xidOf(params), branch, idem);
      return {
        status: reply.created ? 201 : 200,
        body: {
          branch: reply.branch,
          branchId: reply.branchId,
          participant: branch.participant,
          kind: branch.kind,
        },
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
      const view = toApiView(await readable(principal, xid));
      const branch = view.branches.find((b) => b.branch === n);
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
      outcome(xidCall("commit", principal, params, idem), commitAnswer),
    adminListTransactions: async ({ principal, query }) => {
      const q = query as AdminListQuery;
      const page = await answer(
        {
          type: "admin-list",
          principal,
          query: {
            limit: q.limit,
            ...(q.state === undefined ? {} : { state: q.state }),
            ...(q.inDoubt === undefined ? {} : { inDoubt: q.inDoubt }),
            ...(q.cursor === undefined ? {} : { after: { ...q.cursor, xid: q.cursor.xid as Xid } }),
          },
        },
        "page",
      );
      return {
        status: 200,
        body: {
          transactions: page.facts.map(toAdminSummary),
          nextCursor: page.next ? formatCursor(page.next) : null,
        },
      };
    },
    adminGetTransaction: async ({ principal, params }) => {
      const xid = xidOf(params);
      const facts = await factsOf(principal, xid);
      const participants = await participantViews(
        facts,
        (name, branchId) => backend.inspectBranch(name, branchId),
        () => Date.now(),
      );
      // Verdict's side is read after the participants': never older than what they showed.
      const now = await factsOf(principal, xid).catch(() => facts);
      return { status: 200, body: { ...toAdminView(now), participants } };
    },
    adminResolveTransaction: async ({ principal, params, body, note }) => {
      const xid = xidOf(params);
      const b = body as ResolveRequest;
      // A forget leaves nothing to read afterwards: what it forgot is answered instead.
      const before = await factsOf(principal, xid).catch(() => undefined);
      note({
        reason: b.reason,
        ...(b.branch === undefined ? {} : { branch: b.branch }),
        ...(before ? { stateBefore: before.view.state } : {}),
      });
      const { view } = await answer(
        {
          type: "resolve",
          principal,
          xid,
          action: b.action,
          reason: b.reason,
          ...(b.branch === undefined ? {} : { branch: b.branch }),
        },
        "txn",
      );
      const after = await factsOf(principal, xid).catch((e: unknown) => {
        if (before && e instanceof ApiError && e.code === "transaction-not-found") {
          return { ...before, view };
        }
        throw e;
      });
      note({ stateAfter: b.action === "forget" ? "forgotten" : after.view.state });
      return { status: 200, body: toAdminView(after) };
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
          errors: r.errors.slice(0, responseLimits.recoveryErrorsMax).map((e) => ({
            participant: e.participant,
            message: e.message.slice(0, responseLimits.messageCharsMax),
          })),
        },
      };
    },
    adminListAudit: async ({ query }) => {
      const q = query as AuditListQuery;
      const { records, next } = await audit.page(q.cursor ?? 0, q.limit);
      return {
        status: 200,
        body: { records, nextCursor: next === null ? null : String(next) },
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
/** An enlist body checked against the token, ready for the engine. */
interface Enlistable {
  readonly participant: string;
  readonly kind: "postgres" | "redis" | "kafka";
  readonly payload: BranchWork;
  readonly payloadBytes: number;
}

/** The `branches` of a raw begin body, before parsing (at most what the schema allows). */
function branchesOf(body: unknown): unknown[] {
  if (typeof body !== "object" || body === null || !("branches" in body)) return [];
  return Array.isArray(body.branches) ? (body.branches as unknown[]) : [];
}

/** The key of one step of a one-request transaction, derived from the request's own. */
function derivedIdem(idem: Idem | undefined, step: string): Idem | undefined {
  if (idem === undefined) return undefined;
  const sha256 = (s: string) => hash("sha256", s, "hex");
  return {
    key: sha256(`${idem.key}\u0000${step}`),
    fingerprint: sha256(`${idem.fingerprint}\u0000${step}`),
  };
}

function refuseUnknownParticipant(backend: ApiBackend, body: unknown): void {
  if (typeof body !== "object" || body === null || !("participant" in body)) return;
  const name = body.participant;
  if (typeof name !== "string" || !participantNamePattern.test(name)) return;
  if (backend.participantKinds.has(name)) return;
  throw new ApiError("unknown-participant", `no participant ${name}`, { participant: name });
}

/** The participant payload of an enlist body, refused when it is not this participant's kind. */
function payloadOf(b: EnlistCommand, kind: string): BranchWork {
  const [payload, wants]: [BranchWork, ParticipantKind] =
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
