/**
 * One coordinator node: configuration → data directory, cluster id, decision log,
 * participants, engine, driver and HTTP server; and an orderly stop.
 */
import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Health, Participant } from "../participants/participant.js";
import { createKafkaParticipant } from "../participants/kafka/participant.js";
import { createPostgresParticipant } from "../participants/postgres/participant.js";
import { createRedisParticipant } from "../participants/redis/participant.js";
import { buildSchemas, participantNamesByKind } from "./api/contract/schemas.js";
import { NodeHealth, type NodeLifecycle } from "./api/health.js";
import { describeParticipants, explainFromLog } from "./api/participants-report.js";
import { buildServer, type ApiBackend } from "./api/server.js";
import { loadOrCreateClusterId } from "./config/cluster-id.js";
import { metricsToken, sha256Hex, splitHostPort, tokenSecret } from "./config/load.js";
import { TokenStore, type ApiToken } from "./api/tokens.js";
import { listenMetrics } from "./api/metrics-route.js";
import { readTlsFiles, swapCertificate, type TlsFiles } from "./api/tls.js";
import { readForwardSecret } from "./cluster/forward-proof.js";
import { fixedLimits, participantInFlightMax, recordBytesMax } from "./config/limits.js";
import type { Config } from "./config/schema.js";
import { Engine } from "./core/engine.js";
import { newXid, type BranchId, type ClusterId, type Term } from "./core/ids.js";
import type { LogRecord } from "./core/records.js";
import { isDecided } from "./core/txn.js";
import { Driver } from "./driver/driver.js";
import { ClusterMode } from "./cluster/cluster-mode.js";
import { newClusterXid } from "./cluster/xid-term.js";
import { startParticipant } from "./driver/late-start.js";
import { withTimeout } from "./driver/deadline.js";
import { ParticipantCallError } from "./driver/errors.js";
import { parseFailpoints } from "./failpoints/failpoints.js";
import { EtcdNoSpaceError } from "./log/etcd/errors.js";
import type { DecisionLog } from "./log/decision-log.js";
import { LOCAL_TERM, LocalDecisionLog } from "./log/local-decision-log.js";
import { NodeStorage } from "./log/node-storage.js";
import { AuditLog } from "./audit/audit-log.js";
import { createLogger } from "./telemetry/logger.js";
import { createMetrics, type Metrics } from "./telemetry/metrics.js";
import { startTracing } from "./telemetry/otel.js";
import { workOverLimit } from "../shared/branch-work.js";

export const version = "0.1.0";

/** The configured tokens as the API holds them: digests only. */
function apiTokens(configured: Config["tokens"]): ApiToken[] {
  return configured.map((t) => ({
    id: t.id,
    role: t.role,
    digest: Buffer.from(t.secretSha256 ?? sha256Hex(tokenSecret(t)), "hex"),
    ...(t.participants ? { participants: t.participants } : {}),
  }));
}

export interface RunningNode {
  readonly url: string;
  /** The listener of /metrics when it has its own (`metrics.listen`). */
  readonly metricsUrl?: string;
  readonly clusterId: ClusterId;
  /**
   * Takes the tokens of a reloaded configuration (SIGHUP); tokens it drops stay valid for
   * its `tokenRotationGraceMs`.
   */
  reloadTokens(config: Config): void;
  /**
   * Reads the `node.tls` files of a reloaded configuration again (SIGHUP): new connections,
   * and new forwards to the leader, use them. False when the node does not serve HTTPS.
   * Rejects, changing nothing, when a file cannot be read or TLS was turned on or off.
   */
  reloadTls(config: Config): Promise<boolean>;
  stop(): Promise<void>;
}

function createParticipant(
  p: Config["participants"][number],
  logger: Logger,
  inFlightMax: number,
  metrics: Metrics,
): Participant {
  const { kind, ...rest } = p;
  switch (kind) {
    case "postgres":
      // Each participant validates its own fields (unknown ones are refused with the name).
      return createPostgresParticipant({ inFlightMax, ...rest }, { logger });
    case "redis":
      return createRedisParticipant({ inFlightMax, ...rest }, { logger });
    case "kafka":
      return createKafkaParticipant(rest, {
        logger,
        onTransaction: (branches) =>
          metrics.kafkaBranchesPerTransaction.observe({ participant: p.name }, branches),
      });
  }
}

/** A standby's health probe of a participant: bounded like the driver's, typed the same. */
async function standbyHealth(
  participants: ReadonlyMap<string, Participant>,
  name: string,
  boundMs: number,
): Promise<Health> {
  const p = participants.get(name);
  if (!p) throw new ParticipantCallError(name, "health", "not configured", { retryable: false });
  try {
    return await withTimeout(p.health(), boundMs, `health ${name}`);
  } catch (e) {
    throw new ParticipantCallError(name, "health", String(e), { retryable: true, cause: e });
  }
}

function notLeading(name: string): Promise<never> {
  return Promise.reject(
    new ParticipantCallError(name, "direct", "this node does not lead now", { retryable: true }),
  );
}

/** What serves one leadership: the engine, its driver and the log they append to. */
interface Serving {
  readonly engine: Engine;
  readonly driver: Driver;
  readonly log: DecisionLog<LogRecord>;
  /** The etcd term; undefined on the local log. */
  readonly term?: Term;
}

export async function startNode(
  config: Config,
  logger = createLogger(config.log.level, config.node.id),
): Promise<RunningNode> {
  const tracing = startTracing(config.tracing, config.node.id);
  if (tracing.endpoint !== undefined)
    logger.info({ endpoint: tracing.endpoint }, "exporting traces");
  await mkdir(config.node.dataDir, { recursive: true });
  // In a cluster the id is configuration (every node's branch ids must share its prefix).
  const clusterId =
    config.log.kind === "etcd" && config.log.clusterId !== undefined
      ? (config.log.clusterId as ClusterId)
      : await loadOrCreateClusterId(config.node.dataDir);
  const metrics = createMetrics();
  const participants = new Map<string, Participant>();
  for (const p of config.participants) {
    const participant = createParticipant(
      p,
      logger,
      participantInFlightMax(config.limits),
      metrics,
    );
    participants.set(p.name, await startParticipant(participant, clusterId, logger));
  }
  const newEngine = () =>
    new Engine(
      {
        clusterId,
        inFlightMax: config.limits.inFlightTransactionsMax,
        branchesPerTxnMax: config.limits.branchesPerTransactionMax,
        payloadBytesPerTxnMax: config.limits.payloadBytesPerTransactionMax,
        branchWorkOverLimit: (work) => workOverLimit(config.limits, work),
        phase2Backoff: {
          baseMs: config.protocol.phase2BackoffBaseMs,
          maxMs: config.protocol.phase2BackoffMaxMs,
        },
        retentionMs: config.protocol.retentionMs,
        clockSkewMsMax: config.protocol.clockSkewMsMax,
        forgetBatchMax: fixedLimits.forgetBatchMax,
        onePhase: config.protocol.onePhase,
        prepareOrder: config.protocol.prepareOrder,
        idempotencyKeysMax: config.limits.idempotencyKeysMax,
        idempotencyKeyAgeMsMax: config.limits.idempotencyKeyAgeMsMax,
        callsWaitingPerTxnMax: config.limits.callsWaitingPerTransactionMax,
        operatorCallsWaitingMax: config.limits.operatorCallsWaitingMax,
      },
      Math.random,
    );
  const audit = await AuditLog.open({
    dir: join(config.node.dataDir, "audit"),
    ...config.audit,
    nowMs: () => Date.now(),
  });
  const newDriver = (engine: Engine, log: DecisionLog<LogRecord>) =>
    new Driver({
      audit,
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

  let serving: Serving | undefined;
  if (config.log.kind === "local") {
    const log = await LocalDecisionLog.open<LogRecord>({
      storage: new NodeStorage(),
      dir: join(config.node.dataDir, "log"),
      segmentBytesMax: config.log.segmentBytesMax,
      recordBytesMax: recordBytesMax(config.limits),
      pendingAppendsMax: fixedLimits.walPendingAppendsMax,
      onFsync: (ms, entries) => {
        metrics.fsyncSeconds.observe(ms / 1000);
        metrics.entriesPerFsync.observe(entries);
      },
    });
    const engine = newEngine();
    const driver = newDriver(engine, log);
    await driver.start();
    serving = { engine, driver, log };
  }
  let lifecycle: NodeLifecycle = "starting";
  /** The address the server listens on (the configured port may be 0: any free one). */
  let url = `http://${config.node.host}:${config.node.port}`;
  const notLeader = () =>
    Promise.resolve({
      kind: "error",
      code: "not-leader",
      message: "this node does not lead the cluster now",
    } as const);

  const backend: ApiBackend = {
    participantKinds: new Map(config.participants.map((p) => [p.name, p.kind])),
    call: (input) => serving?.driver.call(input) ?? notLeader(),
    isUndecided: (xid) => !isDecided(serving?.engine.view(xid)?.state ?? "aborted"),
    runRecovery: () => {
      if (serving === undefined) return Promise.reject(new Error("this node does not lead"));
      return serving.driver.recover();
    },
    participants: () =>
      describeParticipants(
        config.participants,
        directCalls,
        config.protocol.participantCallTimeoutMs,
        explainFromLog(clusterId, (xid) => serving?.engine.facts(xid)),
        Date.now(),
      ),
    inspectBranch: (name, branchId) => directCalls.inspectBranch(name, branchId as BranchId),
    beginRefusal: () => {
      const refusal = serving?.log.refusal();
      return refusal instanceof EtcdNoSpaceError
        ? `not taking new work: ${refusal.message}`
        : undefined;
    },
    appliedIndex: () => serving?.engine.table.appliedIndex ?? 0,
    peekView: (xid) => serving?.engine.view(xid),
    servingTerm: () => (serving === undefined ? undefined : (serving.term ?? LOCAL_TERM)),
    cluster: () =>
      cluster?.view() ??
      Promise.resolve({
        clusterId,
        nodeId: config.node.id,
        mode: "local" as const,
        // Single-node mode: always its own leader.
        leaderId: config.node.id,
        leaderUrl: url,
        term: LOCAL_TERM,
        commitIndex: serving?.log.lastIndex() ?? 0,
        appliedIndex: serving?.engine.table.appliedIndex ?? 0,
        members: [{ id: config.node.id, url, role: "leader" as const, leader: true }],
      }),
    handOver: (to) =>
      cluster?.handOver(to) ??
      Promise.resolve({
        ok: false,
        code: "invalid-state",
        message: "a single node on the local log has no one to hand leadership to",
      } as const),
    newXid: () => {
      const hex = randomBytes(10).toString("hex");
      const term = serving?.term;
      return term === undefined ? newXid(Date.now(), hex) : newClusterXid(Date.now(), term, hex);
    },
    checkServicePrepared: (name, branchId) =>
      directCalls.checkServicePrepared(name, branchId as BranchId),
    observeRoute: (route, status, seconds) =>
      metrics.routeSeconds.observe({ route, status: String(status) }, seconds),
    health: new NodeHealth({
      lifecycle: () => lifecycle,
      // A standby takes calls (it forwards them): only a leader's log can refuse.
      logRefusal: () => serving?.log.refusal(),
      logLastIndex: () => serving?.log.lastIndex() ?? 0,
      participants: config.participants,
      participantHealth: (name, boundMs) => directCalls.participantHealth(name, boundMs),
    }),
    metricsText: () => {
      metrics.renders.inc();
      metrics.inFlight.set(serving?.engine.inFlight() ?? 0);
      metrics.inDoubt.set(serving?.engine.inDoubt() ?? 0);
      metrics.logNoSpace.set(serving?.log.refusal() instanceof EtcdNoSpaceError ? 1 : 0);
      const oldest = serving?.engine.oldestInDoubtBeganAtMs();
      metrics.inDoubtOldestSeconds.set(oldest === undefined ? 0 : (Date.now() - oldest) / 1000);
      return metrics.registry.metrics();
    },
    metricsContentType: metrics.registry.contentType,
  };
  /** Calls made for a caller, not the engine. A standby forwards all but its health probes. */
  const directCalls = {
    participantHealth: (name: string, boundMs: number) =>
      serving?.driver.participantHealth(name, boundMs) ??
      standbyHealth(participants, name, boundMs),
    listPrepared: (name: string) => serving?.driver.listPrepared(name) ?? notLeading(name),
    checkServicePrepared: (name: string, branchId: BranchId) =>
      serving?.driver.checkServicePrepared(name, branchId) ?? notLeading(name),
    inspectBranch: (name: string, branchId: BranchId) =>
      serving?.driver.inspectBranch(name, branchId) ?? notLeading(name),
  };
  const scrapeToken = metricsToken(config.metrics);
  const tls = config.node.tls;
  const tlsFiles: TlsFiles | undefined = tls === undefined ? undefined : await readTlsFiles(tls);
  const tokens = new TokenStore(apiTokens(config.tokens), () => Date.now());
  /** Built after the server (it adds the routing hook), read by the backend. */
  let cluster: ClusterMode | undefined;
  const server = buildServer({
    backend,
    schemas: buildSchemas(config.limits, participantNamesByKind(config.participants)),
    tokens,
    logger,
    version,
    metrics: {
      cacheMs: config.metrics.cacheMs,
      ...(scrapeToken === undefined ? {} : { token: scrapeToken }),
      onApiListener: config.metrics.listen === undefined,
    },
    audit,
    http: config.http,
    ...(tls === undefined || tlsFiles === undefined
      ? {}
      : { tls: { files: tlsFiles, clientCertificate: tls.clientCertificate } }),
    nowMs: () => Date.now(),
  });
  if (config.log.kind === "etcd") {
    const secretFile = config.cluster.forwardSecretFile;
    const forwardSecret =
      secretFile === undefined ? undefined : await readForwardSecret(secretFile);
    if (forwardSecret === undefined)
      logger.warn(
        "cluster.forwardSecretFile is not set: forwarded calls carry no proof (docs/tls.md)",
      );
    cluster = new ClusterMode({
      config,
      clusterId,
      logger,
      hooks: {
        onRequest: (hook) => server.addHook("onRequest", hook),
        preParsing: (hook) => server.addHook("preParsing", hook),
      },
      ...(tlsFiles === undefined ? {} : { tls: tlsFiles }),
      ...(forwardSecret === undefined ? {} : { forwardSecret }),
      lead: async (term, log) => {
        const engine = newEngine();
        const driver = newDriver(engine, log);
        const mine: Serving = { engine, driver, log, term };
        try {
          await driver.start({ term, fenceInBackground: true });
        } catch (e) {
          driver.stop();
          throw e;
        }
        serving = mine;
        return {
          stop: () => {
            if (serving === mine) serving = undefined;
            driver.stop();
          },
        };
      },
      knows: (xid) => serving?.engine.view(xid) !== undefined,
      // Not serving: nothing can be told, so never claim the transaction was lost.
      mayHaveForgotten: (beganAtMs) =>
        serving?.engine.table.mayHaveForgotten(
          beganAtMs,
          Date.now(),
          config.protocol.retentionMs,
        ) ?? true,
      appliedIndex: () => serving?.engine.table.appliedIndex ?? 0,
      onEtcdRequest: (method) => metrics.etcdRequests.inc({ method }),
      onTakeover: (steps) => {
        for (const step of ["seenFree", "won", "opened", "serving"] as const)
          metrics.takeoverStepSeconds.set({ step }, steps[`${step}AtMs`] / 1000);
      },
    });
  }
  const listened = await server.listen({ host: config.node.host, port: config.node.port });
  // Fastify names the scheme by its own `https` option, which a server factory does not set.
  const address = tls === undefined ? listened : listened.replace(/^http:/, "https:");
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
  await cluster?.start(config.node.advertiseUrl ?? address);
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
    reloadTokens(next: Config) {
      tokens.replace(apiTokens(next.tokens), next.tokenRotationGraceMs);
      logger.info({ ...tokens.count() }, "tokens reloaded");
    },
    async reloadTls(next: Config) {
      const nextTls = next.node.tls;
      if (tls === undefined && nextTls === undefined) return false;
      if (tls === undefined || nextTls === undefined)
        throw new Error("turning node.tls on or off needs a restart");
      const files = await readTlsFiles(nextTls);
      swapCertificate(server.server, files);
      cluster?.setTls(files);
      logger.info({ certFile: nextTls.certFile }, "TLS certificate and key reloaded");
      return true;
    },
    async stop() {
      // Clients may still commit what they began while the node drains; then nothing is taken.
      lifecycle = "draining";
      const last = serving;
      await last?.driver.drain(config.protocol.shutdownGraceMs);
      // In a cluster, leaving hands leadership over (it stops the term's work).
      await cluster?.close();
      last?.driver.stop();
      lifecycle = "stopped";
      await server.close();
      await metricsListener?.close();
      await last?.log.close();
      await audit.close();
      await Promise.all([...participants.values()].map((p) => p.close()));
      await tracing.shutdown();
      logger.info({ clusterId }, "verdict node stopped");
    },
  };
}
