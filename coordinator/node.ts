/**
 * One coordinator node: configuration → data directory, cluster id, decision log,
 * participants, engine, driver and HTTP server; and an orderly stop.
 */
import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Participant } from "../participants/participant.js";
import { createKafkaParticipant } from "../participants/kafka/participant.js";
import { createPostgresParticipant } from "../participants/postgres/participant.js";
import { createRedisParticipant } from "../participants/redis/participant.js";
import { buildSchemas, participantNamesByKind } from "./api/contract/schemas.js";
import { NodeHealth, type NodeLifecycle } from "./api/health.js";
import { describeParticipants, explainFromLog } from "./api/participants-report.js";
import { buildServer, type ApiBackend } from "./api/server.js";
import { branchWorkOverLimit } from "./api/branch-limits.js";
import { loadOrCreateClusterId } from "./config/cluster-id.js";
import { metricsToken, splitHostPort, tokenSecret } from "./config/load.js";
import { listenMetrics } from "./api/metrics-route.js";
import type { Config } from "./config/schema.js";
import { Engine } from "./core/engine.js";
import { newXid, type BranchId, type ClusterId } from "./core/ids.js";
import type { LogRecord } from "./core/records.js";
import { Driver } from "./driver/driver.js";
import { startParticipant } from "./driver/late-start.js";
import { parseFailpoints } from "./failpoints/failpoints.js";
import { LOCAL_TERM, LocalDecisionLog } from "./log/local-decision-log.js";
import { NodeStorage } from "./log/node-storage.js";
import { createLogger } from "./telemetry/logger.js";
import { createMetrics } from "./telemetry/metrics.js";

export const version = "0.1.0";

export interface RunningNode {
  readonly url: string;
  /** The listener of /metrics when it has its own (`metrics.listen`). */
  readonly metricsUrl?: string;
  readonly clusterId: ClusterId;
  stop(): Promise<void>;
}

function createParticipant(
  p: Config["participants"][number],
  logger: Logger,
  inFlightMax: number,
): Participant {
  const { kind, ...rest } = p;
  switch (kind) {
    case "postgres":
      // Each participant validates its own fields (unknown ones are refused with the name).
      return createPostgresParticipant({ inFlightMax, ...rest }, { logger });
    case "redis":
      return createRedisParticipant({ inFlightMax, ...rest }, { logger });
    case "kafka":
      return createKafkaParticipant(rest, { logger });
  }
}

export async function startNode(
  config: Config,
  logger = createLogger(config.log.level, config.node.id),
): Promise<RunningNode> {
  await mkdir(config.node.dataDir, { recursive: true });
  const clusterId = await loadOrCreateClusterId(config.node.dataDir);
  const metrics = createMetrics();
  const participants = new Map<string, Participant>();
  for (const p of config.participants) {
    const participant = createParticipant(
      p,
      logger,
      Math.min(config.limits.inFlightTransactionsMax, 100_000),
    );
    participants.set(p.name, await startParticipant(participant, clusterId, logger));
  }
  const log = await LocalDecisionLog.open<LogRecord>({
    storage: new NodeStorage(),
    dir: join(config.node.dataDir, "log"),
    segmentBytesMax: config.log.segmentBytesMax,
    // A `preparing` record carries every branch's payload.
    recordBytesMax: config.limits.payloadBytesPerTransactionMax * 2 + 64 * 1024,
    onFsync: (ms, entries) => {
      metrics.fsyncSeconds.observe(ms / 1000);
      metrics.entriesPerFsync.observe(entries);
    },
  });
  const engine = new Engine(
    {
      clusterId,
      inFlightMax: config.limits.inFlightTransactionsMax,
      branchesPerTxnMax: config.limits.branchesPerTransactionMax,
      payloadBytesPerTxnMax: config.limits.payloadBytesPerTransactionMax,
      branchWorkOverLimit: branchWorkOverLimit(config.limits),
      phase2Backoff: {
        baseMs: config.protocol.phase2BackoffBaseMs,
        maxMs: config.protocol.phase2BackoffMaxMs,
      },
      retentionMs: config.protocol.retentionMs,
      forgetBatchMax: 1000,
      onePhase: config.protocol.onePhase,
      idempotencyKeysMax: config.limits.idempotencyKeysMax,
      idempotencyKeyAgeMsMax: config.limits.idempotencyKeyAgeMsMax,
      callsWaitingPerTxnMax: config.limits.callsWaitingPerTransactionMax,
      operatorCallsWaitingMax: config.limits.operatorCallsWaitingMax,
    },
    Math.random,
  );
  const driver = new Driver({
    engine,
    log,
    participants,
    logger,
    metrics,
    failpoints: parseFailpoints(process.env.VERDICT_FAILPOINTS),
    now: () => Date.now(),
    tickMs: config.protocol.tickMs,
    snapshotEveryEntries: config.log.snapshotEveryEntries,
    participantCallTimeoutMs: config.protocol.participantCallTimeoutMs,
    recoveryVerifyMs: config.protocol.recoveryVerifyMs,
    recoveryIntervalMs: config.protocol.recoveryIntervalMs,
  });
  await driver.start();
  let lifecycle: NodeLifecycle = "starting";
  /** The address the server listens on (the configured port may be 0: any free one). */
  let url = `http://${config.node.host}:${config.node.port}`;

  const backend: ApiBackend = {
    participantKinds: new Map(config.participants.map((p) => [p.name, p.kind])),
    call: (input) => driver.call(input),
    view: (xid) => engine.view(xid),
    principalOf: (xid) => engine.principalOf(xid),
    adminFacts: (xid) => engine.adminFacts(xid),
    adminList: () => engine.adminList(),
    resolve: (input) => driver.resolve(input),
    runRecovery: () => driver.recover(),
    participants: () =>
      describeParticipants(
        config.participants,
        driver,
        config.protocol.participantCallTimeoutMs,
        explainFromLog(clusterId, (xid) => engine.adminFacts(xid)),
        Date.now(),
      ),
    inspectBranch: (name, branchId) => driver.inspectBranch(name, branchId as BranchId),
    cluster: () => ({
      clusterId,
      nodeId: config.node.id,
      // Single-node mode: a Raft group of one, always its own leader.
      leaderId: config.node.id,
      leaderUrl: null,
      term: LOCAL_TERM,
      commitIndex: log.lastIndex(),
      appliedIndex: engine.table.appliedIndex,
      members: [
        {
          id: config.node.id,
          url,
          role: "voter",
          leader: true,
          matchIndex: log.lastIndex(),
          lagEntries: 0,
          reachable: true,
        },
      ],
    }),
    newXid: () => newXid(Date.now(), randomBytes(10).toString("hex")),
    checkServicePrepared: (name, branchId) =>
      driver.checkServicePrepared(name, branchId as BranchId),
    observeRoute: (route, status, seconds) =>
      metrics.routeSeconds.observe({ route, status: String(status) }, seconds),
    health: new NodeHealth({
      lifecycle: () => lifecycle,
      logRefusal: () => log.refusal(),
      logLastIndex: () => log.lastIndex(),
      participants: config.participants,
      participantHealth: (name, boundMs) => driver.participantHealth(name, boundMs),
    }),
    metricsText: () => {
      metrics.renders.inc();
      metrics.inFlight.set(engine.inFlight());
      metrics.inDoubt.set(engine.inDoubt());
      return metrics.registry.metrics();
    },
    metricsContentType: metrics.registry.contentType,
  };
  const scrapeToken = metricsToken(config.metrics);
  const server = buildServer({
    backend,
    schemas: buildSchemas(config.limits, participantNamesByKind(config.participants)),
    tokens: config.tokens.map((t) => ({
      id: t.id,
      secret: tokenSecret(t),
      role: t.role,
      ...(t.participants ? { participants: t.participants } : {}),
    })),
    logger,
    version,
    metrics: {
      cacheMs: config.metrics.cacheMs,
      ...(scrapeToken === undefined ? {} : { token: scrapeToken }),
      onApiListener: config.metrics.listen === undefined,
    },
    nowMs: () => Date.now(),
  });
  const address = await server.listen({ host: config.node.host, port: config.node.port });
  const metricsListener =
    config.metrics.listen === undefined
      ? undefined
      : await listenMetrics({
          ...splitHostPort(config.metrics.listen),
          source: { render: () => backend.metricsText(), contentType: backend.metricsContentType },
          cacheMs: config.metrics.cacheMs,
          ...(scrapeToken === undefined ? {} : { token: scrapeToken }),
          nowMs: () => Date.now(),
        });
  url = address;
  lifecycle = "serving";
  logger.info(
    { url: address, clusterId, participants: [...participants.keys()] },
    "verdict node listening",
  );
  if (metricsListener) logger.info({ url: metricsListener.url }, "metrics listening");
  return {
    url: address,
    ...(metricsListener ? { metricsUrl: metricsListener.url } : {}),
    clusterId,
    async stop() {
      // Clients may still commit what they began while the node drains; then nothing is taken.
      lifecycle = "draining";
      await driver.drain(config.protocol.shutdownGraceMs);
      driver.stop();
      lifecycle = "stopped";
      await server.close();
      await metricsListener?.close();
      await log.close();
      await Promise.all([...participants.values()].map((p) => p.close()));
      logger.info({ clusterId }, "verdict node stopped");
    },
  };
}
