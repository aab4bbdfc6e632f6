/**
 * The node's one configuration file (YAML or JSON), validated at start with messages that
 * name the offending field. Every timeout and limit has a default and a ceiling; see
 * docs/configuration.md.
 */
import { z } from "zod";
import { apiLimitsSchema, responseLimits } from "./limits.js";
import { tlsFilesSchema } from "../../shared/tls.js";

// ---- TLS and authentication to etcd (docs/tls-backends.md) ----

/** etcd's own users: the password inline (`${ENV}` substitutes it) or read from a file. */
const etcdAuthSchema = z
  .strictObject({
    username: z.string().min(1).max(256),
    password: z.string().min(1).max(4096).optional(),
    passwordFile: z.string().min(1).max(4096).optional(),
  })
  .refine((a) => (a.password === undefined) !== (a.passwordFile === undefined), {
    message: "give exactly one of password or passwordFile",
  });

/** Fields of `log` that secure the connection to etcd; only with `kind: etcd`. */
const etcdSecurityFields = {
  /** Client TLS: the members' CA, and a client certificate when etcd requires one. */
  tls: tlsFilesSchema.optional(),
  /** etcd's user and password authentication (`etcdctl auth enable`). */
  auth: etcdAuthSchema.optional(),
};

// ---- end of etcd security ----

const tokenSchema = z.strictObject({
  /** The principal: who began a transaction, who resolved a heuristic case. */
  id: z.string().min(1).max(128),
  /**
   * The bearer secret: inline, read from an environment variable, or (preferred) only its
   * SHA-256 digest in hex (`printf %s "$SECRET" | sha256sum`), so the file holds no secret.
   */
  secret: z.string().min(1).max(512).optional(),
  secretEnv: z.string().min(1).max(128).optional(),
  secretSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, "64 lowercase hex digits")
    .optional(),
  /** client; operator (resolve, recovery, leadership); auditor (read-only admin); admin = operator. */
  role: z.enum(["client", "operator", "auditor", "admin"]),
  /** A client token may be scoped to the participants it may enlist. */
  participants: z.array(z.string().min(1)).optional(),
});

const participantSchema = z.looseObject({
  name: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,62}$/, "lowercase letters, digits and '-', starting with a letter"),
  kind: z.enum(["postgres", "redis", "kafka"]),
});

export const configSchema = z.strictObject({
  /** `production` refuses to start without tokens; `local-demo` is for the demo on loopback. */
  profile: z.enum(["production", "local-demo"]).default("production"),
  node: z.strictObject({
    id: z.string().min(1).max(64).default("node-1"),
    dataDir: z.string().min(1),
    host: z.string().min(1).default("127.0.0.1"),
    port: z.int().min(0).max(65535).default(7400),
    /** The URL other nodes forward calls to (etcd mode); the listen address by default. */
    advertiseUrl: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional(),
    /** HTTPS for the API and the console (docs/tls.md); files re-read on SIGHUP. */
    tls: z
      .strictObject({
        certFile: z.string().min(1).max(4096),
        keyFile: z.string().min(1).max(4096),
        /** Verifies client certificates, and the leader's certificate when forwarding. */
        caFile: z.string().min(1).max(4096).optional(),
        /** `require`: no connection without a certificate signed by caFile (tokens still needed). */
        clientCertificate: z.enum(["off", "request", "require"]).default("off"),
      })
      .optional(),
  }),
  /** Between the nodes of an etcd cluster (docs/tls.md, "Forwarding between nodes"). */
  cluster: z
    .strictObject({
      /** A file holding the secret every node signs and checks forwarded calls with. */
      forwardSecretFile: z.string().min(1).max(4096).optional(),
      /** How far a forwarded call's timestamp may be from the leader's clock. */
      forwardSkewMs: z.int().min(1000).max(300_000).default(30_000),
    })
    .default({ forwardSkewMs: 30_000 }),
  tokens: z.array(tokenSchema).max(1000).default([]),
  /** After a reload (SIGHUP), tokens no longer configured stay valid this long. */
  tokenRotationGraceMs: z
    .int()
    .min(0)
    .max(7 * 24 * 3_600_000)
    .default(5 * 60_000),
  // Every configured participant appears in the health and participants answers.
  participants: z.array(participantSchema).min(1).max(responseLimits.participantsMax),
  limits: apiLimitsSchema.default(apiLimitsSchema.parse({})),
  protocol: z
    .strictObject({
      /** Single PostgreSQL/Redis branch committed in one phase (settled from its marker). */
      onePhase: z.boolean().default(true),
      /** Phase 1: every prepare at once, or one branch at a time in participant-name order. */
      prepareOrder: z.enum(["parallel", "ordered"]).default("parallel"),
      phase2BackoffBaseMs: z.int().min(1).max(60_000).default(100),
      phase2BackoffMaxMs: z.int().min(1).max(3_600_000).default(10_000),
      /** How long a finished transaction stays visible before it is forgotten. */
      retentionMs: z
        .int()
        .min(0)
        .max(30 * 24 * 3_600_000)
        .default(10 * 60_000),
      tickMs: z.int().min(1).max(1000).default(20),
      /** How long a commit call waits for phase 2 before answering 202 committing. */
      commitWaitMs: z.int().min(0).max(600_000).default(10_000),
      /** How often recovery asks every participant for branches the log does not explain. */
      recoveryIntervalMs: z.int().min(1).max(3_600_000).default(30_000),
      /** The driver's own bound on one participant call (participants keep shorter ones). */
      participantCallTimeoutMs: z.int().min(100).max(600_000).default(60_000),
      /** How long a recovery scan waits to verify its own commits and rollbacks before reporting the rest pending. */
      recoveryVerifyMs: z.int().min(0).max(600_000).default(10_000),
      /** On SIGTERM: how long transactions under way get to finish before the node aborts the rest. */
      shutdownGraceMs: z.int().min(0).max(600_000).default(10_000),
      /**
       * The most any participant server's clock may differ from the coordinator nodes'
       * clocks: a branch's records are collected only after max(deadline, finish + retention)
       * plus this (docs/architecture.md §7.4).
       */
      clockSkewMsMax: z.int().min(0).max(3_600_000).default(5_000),
    })
    .default({
      onePhase: true,
      prepareOrder: "parallel",
      phase2BackoffBaseMs: 100,
      phase2BackoffMaxMs: 10_000,
      retentionMs: 600_000,
      tickMs: 20,
      commitWaitMs: 10_000,
      recoveryIntervalMs: 30_000,
      participantCallTimeoutMs: 60_000,
      recoveryVerifyMs: 10_000,
      shutdownGraceMs: 10_000,
      clockSkewMsMax: 5_000,
    }),
  /**
   * Traces over OTLP/HTTP (docs/observability.md). Off unless `otlpEndpoint` is set here or
   * the standard `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is.
   */
  tracing: z
    .strictObject({
      /** The collector's traces URL, e.g. http://127.0.0.1:4318/v1/traces. */
      otlpEndpoint: z
        .url({ protocol: /^https?$/ })
        .max(2048)
        .optional(),
      /** `service.name` of the spans (`OTEL_SERVICE_NAME` wins when set). */
      serviceName: z.string().min(1).max(128).default("verdict"),
      /** Spans are sent in batches at most this long after they end. */
      exportDelayMs: z.int().min(10).max(60_000).default(1000),
    })
    .default({ serviceName: "verdict", exportDelayMs: 1000 }),
  /** The audit trail's files (docs/security.md, "Audit trail"): size bounded by rotation. */
  audit: z
    .strictObject({
      fileBytesMax: z
        .int()
        .min(4096)
        .max(1 << 30)
        .default(16 << 20),
      /** Rotated files kept besides the current one. */
      filesMax: z.int().min(1).max(10_000).default(20),
      /** Records waiting for the disk; beyond it an append is refused and logged. */
      pendingMax: z.int().min(1).max(100_000).default(1000),
    })
    .default({ fileBytesMax: 16 << 20, filesMax: 20, pendingMax: 1000 }),
  /** Bounds on HTTP clients before any route runs (docs/security.md, "API abuse resistance"). */
  http: z
    .strictObject({
      headersTimeoutMs: z.int().min(100).max(120_000).default(10_000),
      requestTimeoutMs: z.int().min(100).max(600_000).default(30_000),
      keepAliveTimeoutMs: z.int().min(100).max(600_000).default(5_000),
      connectionsPerAddressMax: z.int().min(1).max(100_000).default(256),
      connectionsMax: z.int().min(1).max(1_000_000).default(8_192),
      jsonDepthMax: z.int().min(4).max(1_000).default(32),
    })
    .refine((h) => h.headersTimeoutMs <= h.requestTimeoutMs, {
      message: "headersTimeoutMs must not exceed requestTimeoutMs",
      path: ["headersTimeoutMs"],
    })
    .refine((h) => h.connectionsPerAddressMax <= h.connectionsMax, {
      message: "connectionsPerAddressMax must not exceed connectionsMax",
      path: ["connectionsPerAddressMax"],
    })
    .default({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      keepAliveTimeoutMs: 5_000,
      connectionsPerAddressMax: 256,
      connectionsMax: 8_192,
      jsonDepthMax: 32,
    }),
  /** `GET /metrics`: cached rendering, optionally a bearer token and a listener of its own. */
  metrics: z
    .strictObject({
      /** One rendering serves every scrape for this long (0: render each scrape). */
      cacheMs: z.int().min(0).max(60_000).default(1000),
      /** A bearer token scrapers must send, inline or from an environment variable. */
      token: z.string().min(1).max(512).optional(),
      tokenEnv: z.string().min(1).max(128).optional(),
      /** `host:port` of a listener serving only /metrics; the API's listener then does not. */
      listen: z
        .string()
        .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):[0-9]{1,5}$/, "host:port ([::1]:port for IPv6)")
        .optional(),
    })
    .default({ cacheMs: 1000 }),
  log: z
    .strictObject({
      /** `local`: the fsynced WAL of one node; `etcd`: N stateless nodes over etcd (docs/etcd.md). */
      kind: z.enum(["local", "etcd"]).default("local"),
      /** etcd: host:port (or http(s)://host:port) of every member. */
      endpoints: z.array(z.string().min(1).max(256)).min(1).max(16).optional(),
      /** etcd: names this cluster's keys (`/verdict/<clusterId>/`) and its branch ids. */
      clusterId: z
        .string()
        .regex(/^[A-Za-z0-9._-]{1,64}$/, "1 to 64 of A-Z a-z 0-9 . _ -")
        .optional(),
      /** etcd: the leader lease's TTL, whole seconds (etcd counts seconds). */
      leaseTtlMs: z.int().min(2000).max(60_000).default(5000),
      /** etcd: the leader demotes this long before its lease could expire. */
      demotionMarginMs: z.int().min(100).max(30_000).default(1000),
      /** etcd: the deadline of one etcd request. */
      requestTimeoutMs: z.int().min(100).max(60_000).default(2000),
      segmentBytesMax: z
        .int()
        .min(64 * 1024)
        .max(1024 * 1024 * 1024)
        .default(64 * 1024 * 1024),
      /** A snapshot of the transaction table is taken after this many entries. */
      snapshotEveryEntries: z.int().min(10).max(10_000_000).default(10_000),
      level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
      ...etcdSecurityFields,
    })
    .default({
      kind: "local",
      leaseTtlMs: 5000,
      demotionMarginMs: 1000,
      requestTimeoutMs: 2000,
      segmentBytesMax: 64 * 1024 * 1024,
      snapshotEveryEntries: 10_000,
      level: "info",
    }),
});

export type Config = z.output<typeof configSchema>;
export type TokenConfig = z.output<typeof tokenSchema>;
export type MetricsConfig = z.output<typeof configSchema>["metrics"];
export type TracingConfig = z.output<typeof configSchema>["tracing"];
export type HttpConfig = z.output<typeof configSchema>["http"];
export type TlsConfig = NonNullable<z.output<typeof configSchema>["node"]["tls"]>;
