/**
 * The node's one configuration file (YAML or JSON), validated at start with messages that
 * name the offending field. Every timeout and limit has a default and a ceiling; see
 * docs/configuration.md.
 */
import { z } from "zod";
import { apiLimitsSchema } from "../api/contract/limits.js";

const tokenSchema = z.strictObject({
  /** The principal: who began a transaction, who resolved a heuristic case. */
  id: z.string().min(1).max(128),
  /** The bearer secret, inline or read from an environment variable (preferred). */
  secret: z.string().min(1).max(512).optional(),
  secretEnv: z.string().min(1).max(128).optional(),
  role: z.enum(["client", "admin"]),
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
  }),
  tokens: z.array(tokenSchema).max(1000).default([]),
  participants: z.array(participantSchema).min(1).max(100),
  limits: apiLimitsSchema.default(apiLimitsSchema.parse({})),
  protocol: z
    .strictObject({
      /** Single PostgreSQL/Redis branch committed in one phase (settled from its marker). */
      onePhase: z.boolean().default(true),
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
    })
    .default({
      onePhase: true,
      phase2BackoffBaseMs: 100,
      phase2BackoffMaxMs: 10_000,
      retentionMs: 600_000,
      tickMs: 20,
      commitWaitMs: 10_000,
      recoveryIntervalMs: 30_000,
      participantCallTimeoutMs: 60_000,
      recoveryVerifyMs: 10_000,
      shutdownGraceMs: 10_000,
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
