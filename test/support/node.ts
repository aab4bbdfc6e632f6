/**
 * Starts a real coordinator node in this process, on a free loopback port, with a fresh
 * data directory and PostgreSQL participants on the deploy/local databases.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { validateConfig } from "../../coordinator/config/load.js";
import { startNode, type RunningNode } from "../../coordinator/node.js";
import { createLogger } from "../../coordinator/telemetry/logger.js";
import { services } from "./services.js";

export interface TestNode {
  readonly url: string;
  readonly node: RunningNode;
  readonly dataDir: string;
  readonly schema: string;
  readonly clientToken: string;
  readonly otherClientToken: string;
  readonly adminToken: string;
  /** Stops the node, then removes its data and schema (unless the data directory was given). */
  stop(): Promise<void>;
  /** Removes data and schema of a node already stopped through `node.stop()`. */
  cleanup(): Promise<void>;
}

export interface TestNodeOptions {
  readonly limits?: Record<string, number>;
  readonly protocol?: Record<string, number | boolean>;
  /** The `metrics` section; by default each scrape renders afresh (tests read counters). */
  readonly metrics?: Record<string, unknown>;
  /** Reuse a data directory (a restart); a new one otherwise. */
  readonly dataDir?: string;
  /** Extra participants (beyond pg-a and pg-b on verdict_a / verdict_b). */
  readonly participants?: Record<string, unknown>[];
  readonly scopedParticipants?: string[];
  /** Extra fields of both PostgreSQL participants (e.g. `statementRoles`). */
  readonly postgres?: Record<string, unknown>;
  /**
   * PostgreSQL schema of Verdict's tables: a cluster id is registered per schema, so each new
   * test cluster gets its own (pass the same one again for a restart of the same cluster).
   */
  readonly schema?: string;
  /** Tokens configured after client-a, client-b and admin (e.g. operator and auditor ones). */
  readonly extraTokens?: Record<string, unknown>[];
  /** The `http` section (client bounds); the defaults otherwise. */
  readonly http?: Record<string, unknown>;
  /** The `tracing` section (OTLP export); none by default. */
  readonly tracing?: Record<string, unknown>;
}

export async function startTestNode(opts: TestNodeOptions = {}): Promise<TestNode> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), "verdict-test-")));
  const schema = opts.schema ?? `vt_${randomBytes(6).toString("hex")}`;
  const secret = () => randomBytes(18).toString("base64url");
  const clientToken = secret();
  const otherClientToken = secret();
  const adminToken = secret();
  const config = validateConfig(
    {
      node: { id: "test-1", dataDir, host: "127.0.0.1", port: 0 },
      tokens: [
        { id: "client-a", role: "client", secret: clientToken },
        {
          id: "client-b",
          role: "client",
          secret: otherClientToken,
          ...(opts.scopedParticipants ? { participants: opts.scopedParticipants } : {}),
        },
        { id: "admin", role: "admin", secret: adminToken },
        ...(opts.extraTokens ?? []),
      ],
      participants: [
        ...(["pg-a", "pg-b"] as const).map((name) => ({
          name,
          kind: "postgres",
          connectionString: name === "pg-a" ? services.pgUrlA : services.pgUrlB,
          schema,
          statementRoles: services.pgStatementRoles,
          ...opts.postgres,
        })),
        ...(opts.participants ?? []),
      ],
      limits: { inFlightTransactionsMax: 256, ...opts.limits },
      protocol: { tickMs: 10, phase2BackoffBaseMs: 20, phase2BackoffMaxMs: 500, ...opts.protocol },
      metrics: opts.metrics ?? { cacheMs: 0 },
      ...(opts.tracing ? { tracing: opts.tracing } : {}),
      ...(opts.http ? { http: opts.http } : {}),
      log: { level: "warn" },
    },
    "test",
  );
  const node = await startNode(
    config,
    createLogger(process.env.VERDICT_TEST_LOG ?? "silent", "test-1"),
  );
  const cleanup = async (): Promise<void> => {
    if (opts.dataDir) return;
    await rm(dataDir, { recursive: true, force: true });
    await dropSchema(schema);
  };
  return {
    url: node.url,
    node,
    dataDir,
    schema,
    clientToken,
    otherClientToken,
    adminToken,
    async stop() {
      await node.stop();
      await cleanup();
    },
    cleanup,
  };
}

/** Removes a finished test cluster's tables from both databases. */
export async function dropSchema(schema: string): Promise<void> {
  for (const url of [services.pgUrlA, services.pgUrlB]) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`drop schema if exists ${schema} cascade`);
    } finally {
      await client.end();
    }
  }
}
