/**
 * The Kafka participant (docs/architecture.md §7.3, README.md here): nothing is staged in Kafka at
 * prepare; at commit one Kafka transaction on the branch's fixed transactional id produces
 * the messages and a marker, exactly once, whatever crashed when. Branches sharing an id
 * share its producer and, when they queue together, one Kafka transaction (slot.ts).
 */
import type { ConnectionOptions } from "node:tls";
import kafkajs from "kafkajs";
import type { Admin, Kafka, logCreator, Producer } from "kafkajs";
import type {
  BranchId,
  BranchRef,
  BranchView,
  Health,
  Participant,
  Phase2Context,
  Phase2Outcome,
  PrepareContext,
  Vote,
} from "../participant.js";
import { clusterIdProblem } from "../common/cluster-id.js";
import { Lifecycle } from "../common/lifecycle.js";
import { errorIds, messageOf, type ParticipantErrorIds } from "../common/errors.js";
import { silentLogger, type ParticipantLogger } from "../common/logger.js";
import {
  BatchStepError,
  commitBatch,
  type AttemptResult,
  type BranchToCommit,
} from "./commit-batch.js";
import { encodeMarkerFloor } from "./evidence.js";
import { inspectKafkaBranch } from "./inspect.js";
import { parseKafkaParticipantConfig, type KafkaParticipantConfig } from "./config.js";
import {
  AttemptTimeoutError,
  KafkaConfigError,
  KafkaParticipantError,
  Phase2AttemptError,
  type KafkaErrorIds,
  KafkaUnavailableError,
  ParticipantNotStartedError,
  PoolLayoutChangedError,
  TransactionalIdBusyError,
} from "./errors.js";
import {
  layoutDifference,
  layoutRecordKey,
  markerPartitionOf,
  transactionalIdAt,
  transactionalIdOf,
  type PoolLayout,
} from "./layout.js";
import { ensureMarkerTopic, readLayout, writeLayout } from "./marker-topic.js";
import {
  kafkaPayloadSchema,
  recordBatchOverheadBytes,
  recordBytesMax,
  type KafkaPayload,
} from "./payload.js";
import { CommittedReader } from "./reader.js";
import { Slot, SlotError } from "./slot.js";
import { readTlsFiles, tlsRefusal } from "../../shared/tls.js";
import { TopicInfoCache, isTopicProblem, type TopicInfo, type TopicProblem } from "./topics.js";

const { Kafka: KafkaClient, logLevel } = kafkajs;

export interface KafkaParticipantDeps {
  readonly logger?: ParticipantLogger;
  /** Called after each Kafka transaction a batch committed, with the branches it carried. */
  readonly onTransaction?: (branches: number) => void;
}

/** The participant, plus `fence` (always present here). */
export type KafkaParticipant = Participant<KafkaPayload> &
  Required<Pick<Participant<KafkaPayload>, "fence">>;

/** Topics looked up at once by one prepare. */
const topicLookupsInParallelMax = 8;
/** Rolled-back branch ids remembered to refuse a late prepare (there is nothing to clean up). */
const tombstonesMax = 10_000;
/** Branch ids whose commit this process was called for, remembered to distrust `firstCall`. */
const calledMax = 10_000;
/** Refresh the layout record this often (and when it is older than half the retention). */
const layoutRefreshIntervalMsMax = 24 * 60 * 60 * 1000;

export const kafkaNoVoteReasons = {
  invalidPayload: "invalid-payload",
  branchTooLarge: "branch-too-large",
  topicMissing: "topic-missing",
  topicUnauthorized: "topic-unauthorized",
  topicInvalid: "topic-invalid",
  topicReserved: "topic-reserved",
  partitionMissing: "partition-missing",
  messageTooLarge: "message-too-large",
  deadline: "deadline",
  participantUnavailable: "participant-unavailable",
  rolledBack: "rolled-back",
} as const;

export function createKafkaParticipant(
  config: unknown,
  deps: KafkaParticipantDeps = {},
): KafkaParticipant {
  return new KafkaParticipantImpl(parseKafkaParticipantConfig(config), {
    logger: deps.logger ?? silentLogger,
    onTransaction: deps.onTransaction ?? (() => undefined),
  });
}

class KafkaParticipantImpl implements KafkaParticipant {
  readonly kind = "kafka" as const;
  readonly name: string;
  private readonly kafka: Kafka;
  private readonly admin: Admin;
  private readonly topics: TopicInfoCache;
  /** Transactional id → its slot, made at first use (at most `poolSize`). */
  private readonly slots = new Map<string, Slot>();
  private readonly tombstones = new Set<string>();
  private readonly called = new Set<string>();
  private reader: CommittedReader | undefined;
  private readonly life: Lifecycle<{ clusterId: string; layout: PoolLayout }>;
  private warnings: string[] = [];
  private refreshTimer: NodeJS.Timeout | undefined;

  private readonly logger: ParticipantLogger;

  constructor(
    private readonly config: KafkaParticipantConfig,
    private readonly deps: Required<KafkaParticipantDeps>,
  ) {
    this.logger = deps.logger;
    this.name = config.name;
    this.life = new Lifecycle(this.name, (m) => new ParticipantNotStartedError(m, this.ids()));
    this.kafka = new KafkaClient({
      clientId: config.clientId,
      brokers: config.brokers,
      ssl: this.sslOptions(),
      ...(config.sasl === undefined ? {} : { sasl: config.sasl }),
      connectionTimeout: config.connectionTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000 },
      logLevel: logLevel.ERROR,
      logCreator: this.kafkaLogCreator(),
    });
    this.admin = this.kafka.admin();
    this.topics = new TopicInfoCache(this.admin, {
      participant: config.name,
      ttlMs: config.topicInfoCacheMs,
      entriesMax: config.topicInfoCacheEntriesMax,
      logger: this.logger,
    });
  }

  async start(clusterId: string): Promise<void> {
    const clusterIdRefusal = clusterIdProblem(clusterId);
    if (clusterIdRefusal !== undefined) throw new KafkaConfigError(clusterIdRefusal, this.ids());
    this.life.assertOpen();
    const layout: PoolLayout = {
      transactionalIdPrefix: this.config.transactionalIdPrefix ?? `verdict-${clusterId}`,
      poolSize: this.config.poolSize,
      markerPartitions: this.config.markerPartitions,
    };
    await this.withTimeout(this.config.attemptTimeoutMs, "start", async () => {
      await this.unavailableOnError("connecting", () =>
        this.admin.connect().catch((err: unknown) => {
          throw this.refusedAtStart(err) ?? err;
        }),
      );
      const warnings = await ensureMarkerTopic(this.admin, {
        participant: this.name,
        topic: this.config.markerTopic,
        partitions: this.config.markerPartitions,
        replicationFactor: this.config.replicationFactor,
        minInsyncReplicas: this.config.markerMinInsyncReplicas,
        retentionMs: this.config.markerRetentionMs,
        timeoutMs: this.config.requestTimeoutMs,
      });
      warnings.push(...(await this.aclWarnings()));
      this.reader ??= await this.unavailableOnError("opening the marker reader", () =>
        CommittedReader.open(this.kafka, { owner: this.name }),
      );
      await this.checkAndRecordLayout(clusterId, layout);
      this.warnings = warnings;
    });
    this.life.started({ clusterId, layout });
    for (const warning of this.warnings) this.logger.warn({ participant: this.name }, warning);
    const refreshMs = Math.min(this.config.markerRetentionMs / 4, layoutRefreshIntervalMsMax);
    clearInterval(this.refreshTimer); // a repeated start keeps one timer
    this.refreshTimer = setInterval(() => void this.refreshLayout(), refreshMs);
    this.refreshTimer.unref();
    this.logger.info(
      { participant: this.name, clusterId, markerTopic: this.config.markerTopic, ...layout },
      "kafka participant started",
    );
  }

  async prepare(branch: BranchRef<KafkaPayload>, ctx: PrepareContext): Promise<Vote> {
    this.assertOwnBranch(branch.branchId);
    if (this.tombstones.has(branch.branchId)) {
      return no(kafkaNoVoteReasons.rolledBack, "the branch was rolled back");
    }
    const parsed = kafkaPayloadSchema.safeParse(branch.payload);
    if (!parsed.success) return no(kafkaNoVoteReasons.invalidPayload, parsed.error.message);
    const deadlineMs = Math.min(ctx.deadlineMs, Date.now() + this.config.prepareTimeoutMs);
    try {
      return await this.withTimeout(deadlineMs - Date.now(), "prepare", async () => {
        const vote = await this.validate(parsed.data);
        return vote.vote === "yes" ? this.withMarkerFloor(branch.branchId) : vote;
      });
    } catch (err) {
      if (err instanceof AttemptTimeoutError) {
        return no(kafkaNoVoteReasons.deadline, `the deadline passed while checking topics`);
      }
      return no(kafkaNoVoteReasons.participantUnavailable, messageOf(err));
    }
  }

  async commit(branch: BranchRef<KafkaPayload>, ctx: Phase2Context): Promise<Phase2Outcome> {
    this.life.assertStarted();
    const layout = this.assertOwnBranch(branch.branchId);
    const payload = kafkaPayloadSchema.safeParse(branch.payload);
    // Prepare voted yes on this payload, so it is valid and never targets the marker topic.
    if (
      !payload.success ||
      payload.data.messages.some((m) => m.topic === this.config.markerTopic)
    ) {
      throw new Error(`assertion: branch ${branch.branchId} carries an invalid Kafka payload`);
    }
    const transactionalId = transactionalIdOf(layout, branch.branchId);
    const ids = { ...this.ids(branch.branchId), transactionalId };
    // A first call that arrives after another call here (a delayed one) checks its marker.
    const first = ctx.firstCall === true && !this.called.has(branch.branchId);
    remember(this.called, branch.branchId, calledMax);
    const { firstCall: _, ...retryCtx } = ctx;
    const result = await this.slotOf(transactionalId)
      .commit({
        branchId: branch.branchId,
        messages: payload.data.messages,
        ctx: first ? ctx : retryCtx,
      })
      .catch((err: unknown) => {
        this.logger.warn(
          { participant: this.name, branchId: branch.branchId, transactionalId, err },
          "kafka commit attempt failed; the coordinator retries, checking the marker first",
        );
        throw this.attemptError(err, ids);
      });
    this.logger.info(
      {
        participant: this.name,
        branchId: branch.branchId,
        transactionalId,
        term: ctx.term,
        result,
      },
      "kafka branch committed",
    );
    return { outcome: result };
  }

  /** Nothing was produced for the branch: nothing to undo. */
  rollback(branch: BranchRef<KafkaPayload>, ctx: Phase2Context): Promise<Phase2Outcome> {
    this.life.assertStarted();
    this.assertOwnBranch(branch.branchId);
    remember(this.tombstones, branch.branchId, tombstonesMax);
    this.logger.info(
      { participant: this.name, branchId: branch.branchId, term: ctx.term },
      "kafka branch rolled back (nothing was produced)",
    );
    return Promise.resolve({ outcome: "done" });
  }

  /**
   * Fences every transactional id of the pool once, so no earlier attempt anywhere can still
   * commit; each slot keeps the new producer for the batches that follow.
   */
  async fence(): Promise<void> {
    const { layout } = this.life.assertStarted();
    const slots = Array.from({ length: layout.poolSize }, (_, slot) => slot);
    const failed: string[] = [];
    const fenceNext = async (): Promise<void> => {
      for (let slot = slots.shift(); slot !== undefined; slot = slots.shift()) {
        const transactionalId = transactionalIdAt(layout, slot);
        await this.slotOf(transactionalId)
          .fence()
          .catch((err: unknown) => {
            failed.push(`${transactionalId}: ${messageOf(err)}`);
          });
      }
    };
    await Promise.all(Array.from({ length: this.config.fenceConcurrency }, fenceNext));
    if (failed.length > 0) {
      throw new KafkaUnavailableError(
        `participant ${this.name}: fencing failed for ${failed.length} of ${layout.poolSize} ` +
          `transactional ids: ${failed.slice(0, 3).join("; ")}`,
        this.ids(),
      );
    }
    this.logger.info(
      { participant: this.name, poolSize: layout.poolSize },
      "fenced every transactional id of the pool",
    );
  }

  /** Nothing is ever prepared inside Kafka: a branch exists there only once committed. */
  recover(): Promise<BranchId[]> {
    this.life.assertStarted();
    return Promise.resolve([]);
  }

  async inspect(branchId: BranchId, evidence?: string): Promise<BranchView> {
    const layout = this.assertOwnBranch(branchId);
    return this.unavailableOnError(`inspecting ${branchId}`, () =>
      inspectKafkaBranch(this.assertReader(), {
        markerTopic: this.config.markerTopic,
        layout,
        branchId,
        evidence,
        rolledBack: this.tombstones.has(branchId),
      }),
    );
  }

  /** Markers stay until the marker topic's retention removes them, far behind the forget horizon. */
  forget(_branchIds: readonly BranchId[]): Promise<void> {
    this.life.assertStarted();
    return Promise.resolve();
  }

  async health(): Promise<Health> {
    if (this.life.closed) return { ok: false, detail: "closed", warnings: [] };
    if (this.life.current === undefined) return { ok: false, detail: "not started", warnings: [] };
    const startedMs = Date.now();
    try {
      const described = await this.withTimeout(this.config.healthTimeoutMs, "health", () =>
        this.admin.describeCluster(),
      );
      return {
        ok: true,
        detail: `${described.brokers.length} broker(s) answered in ${Date.now() - startedMs} ms`,
        warnings: [...this.warnings],
      };
    } catch (err) {
      return { ok: false, detail: messageOf(err), warnings: [...this.warnings] };
    }
  }

  async close(): Promise<void> {
    if (!this.life.close()) return;
    clearInterval(this.refreshTimer);
    await Promise.allSettled([...this.slots.values()].map((slot) => slot.close()));
    await Promise.allSettled([this.reader?.close(), this.admin.disconnect()]);
  }

  // ---- prepare ----

  private async validate(payload: KafkaPayload): Promise<Vote> {
    const { messages } = payload;
    if (messages.length > this.config.messagesPerBranchMax) {
      return no(
        kafkaNoVoteReasons.branchTooLarge,
        `${messages.length} messages; at most ${this.config.messagesPerBranchMax} per branch`,
      );
    }
    const branchBytes = messages.reduce((sum, m) => sum + recordBytesMax(m), 0);
    if (branchBytes > this.config.branchBytesMax) {
      return no(
        kafkaNoVoteReasons.branchTooLarge,
        `${branchBytes} record bytes; at most ${this.config.branchBytesMax} per branch`,
      );
    }
    const topics = [...new Set(messages.map((m) => m.topic))];
    const reserved = topics.find((t) => t === this.config.markerTopic || t.startsWith("__"));
    if (reserved !== undefined) {
      return no(
        kafkaNoVoteReasons.topicReserved,
        `topic ${reserved}: Verdict's marker topic and Kafka's internal topics take no messages`,
      );
    }
    const infos = new Map<string, TopicInfo>();
    for (let i = 0; i < topics.length; i += topicLookupsInParallelMax) {
      const batch = topics.slice(i, i + topicLookupsInParallelMax);
      const found = await Promise.all(batch.map((t) => this.topics.get(t)));
      for (const [j, info] of found.entries()) {
        if (isTopicProblem(info)) return problemVote(info);
        infos.set(batch[j]!, info);
      }
    }
    for (const [i, m] of messages.entries()) {
      const info = infos.get(m.topic);
      if (info === undefined) throw new Error(`assertion: no info for topic ${m.topic}`);
      if (m.partition !== undefined && m.partition >= info.partitions) {
        return no(
          kafkaNoVoteReasons.partitionMissing,
          `message ${i + 1}: topic ${m.topic} has ${info.partitions} partitions, no partition ${m.partition}`,
        );
      }
      const bytes = recordBytesMax(m) + recordBatchOverheadBytes;
      if (bytes > info.maxMessageBytes) {
        return no(
          kafkaNoVoteReasons.messageTooLarge,
          `message ${i + 1}: topic ${m.topic} takes record batches of at most ` +
            `${info.maxMessageBytes} bytes (max.message.bytes); this record needs up to ${bytes}`,
        );
      }
    }
    return { vote: "yes" };
  }

  /** A yes vote carrying where the branch's marker partition stands now (evidence.ts). */
  private async withMarkerFloor(branchId: BranchId): Promise<Vote> {
    const { layout } = this.life.assertStarted();
    const partition = markerPartitionOf(layout, branchId);
    const offset = await this.assertReader().highWatermark(this.config.markerTopic, partition);
    return { vote: "yes", evidence: encodeMarkerFloor(partition, offset) };
  }

  // ---- start ----

  /** Refuses a start whose layout differs from the recorded one (unless allowed), then records it. */
  private async checkAndRecordLayout(clusterId: string, wanted: PoolLayout): Promise<void> {
    const key = layoutRecordKey(clusterId);
    const recorded = await readLayout(this.assertReader(), this.config.markerTopic, wanted, key);
    const ids = { ...this.ids(), topic: this.config.markerTopic };
    if (recorded.unreadable !== undefined) {
      throw new PoolLayoutChangedError(
        `participant ${this.name}: the record ${key} in ${this.config.markerTopic} is not a pool ` +
          `layout: ${recorded.unreadable.slice(0, 200)}`,
        ids,
      );
    }
    const difference =
      recorded.layout === undefined ? undefined : layoutDifference(recorded.layout, wanted);
    if (difference !== undefined) {
      if (this.config.poolSizeChange !== "allow") {
        throw new PoolLayoutChangedError(
          `participant ${this.name}: the Kafka pool layout of cluster ${clusterId} changed ` +
            `(${difference}). A branch in doubt would map to a transactional id that does not ` +
            `fence its earlier attempts, or to another marker partition. Restore the recorded ` +
            `values, or set poolSizeChange: "allow" once no Kafka branch is in doubt.`,
          ids,
        );
      }
      this.logger.warn(
        { participant: this.name, clusterId, difference },
        "recording a changed Kafka pool layout (poolSizeChange: allow)",
      );
    }
    if (recorded.layout === undefined || difference !== undefined) {
      await writeLayout(this.kafka, this.config.markerTopic, wanted, key);
    }
  }

  /**
   * Writes the layout record again, so that retention never removes it while the cluster
   * runs (a start after that would accept any layout). Failures only warn: the next one retries.
   */
  private async refreshLayout(): Promise<void> {
    const { reader } = this;
    const started = this.life.current;
    if (started === undefined || reader === undefined) return;
    const { clusterId, layout } = started;
    try {
      const key = layoutRecordKey(clusterId);
      const recorded = await readLayout(reader, this.config.markerTopic, layout, key);
      if (
        recorded.layout !== undefined &&
        layoutDifference(recorded.layout, layout) !== undefined
      ) {
        const warning = `the recorded Kafka pool layout differs from this node's; not refreshed`;
        if (!this.warnings.includes(warning)) this.warnings.push(warning);
        this.logger.error({ participant: this.name, clusterId }, warning);
        return;
      }
      await writeLayout(this.kafka, this.config.markerTopic, layout, key);
    } catch (err) {
      this.logger.warn({ participant: this.name, err }, "could not refresh the Kafka pool layout");
    }
  }

  /**
   * Write access cannot be checked at prepare with kafkajs 2.2.4 (see README): say so where it
   * matters, when the broker runs an authorizer.
   */
  private async aclWarnings(): Promise<string[]> {
    try {
      const cluster = await this.admin.describeCluster();
      const broker = cluster.brokers[0];
      if (broker === undefined) return [];
      const described = await this.admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          {
            type: kafkajs.ConfigResourceTypes.BROKER,
            name: String(broker.nodeId),
            configNames: ["authorizer.class.name"],
          },
        ],
      });
      const authorizer = described.resources[0]?.configEntries[0]?.configValue ?? "";
      if (authorizer === "") return [];
      return [
        `the brokers enforce ACLs (${authorizer}); prepare cannot check WRITE access to topics, ` +
          `so a missing ACL shows at commit (retried and alerted until fixed)`,
      ];
    } catch (err) {
      return [`could not tell whether the brokers enforce ACLs: ${messageOf(err)}`];
    }
  }

  // ---- plumbing ----

  /** The slot of `transactionalId`, made at first use. */
  private slotOf(transactionalId: string): Slot {
    let slot = this.slots.get(transactionalId);
    if (slot === undefined) {
      this.life.assertOpen();
      slot = new Slot({
        transactionalId,
        waitingMax: this.config.waitingAttemptsPerIdMax,
        branchesPerTransactionMax: this.config.branchesPerTransactionMax,
        batchBytesMax: this.config.branchBytesMax,
        attemptTimeoutMs: this.config.attemptTimeoutMs,
        open: () => this.openProducer(transactionalId),
        commit: (producer, branches) => this.commitBatch(producer, branches),
      });
      this.slots.set(transactionalId, slot);
    }
    return slot;
  }

  /** A producer of `transactionalId`, its InitProducerId done: every older one is fenced. */
  private async openProducer(transactionalId: string): Promise<Producer> {
    const producer = this.kafka.producer({
      transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: this.config.attemptTimeoutMs,
      allowAutoTopicCreation: false,
      // Bounded: the coordinator's phase-2 loop does the retrying.
      retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
    });
    try {
      await producer.connect();
      await (await producer.transaction()).abort(); // nothing was added: no request is sent
      return producer;
    } catch (err) {
      await producer.disconnect().catch(() => undefined);
      throw new BatchStepError("fence", err);
    }
  }

  private async commitBatch(
    producer: Producer,
    branches: readonly BranchToCommit[],
  ): Promise<AttemptResult[]> {
    const { layout } = this.life.assertStarted();
    const results = await commitBatch({
      reader: this.assertReader(),
      topics: this.topics,
      markerTopic: this.config.markerTopic,
      layout,
      producer,
      branches,
      stableWaitMsMax: this.config.attemptTimeoutMs / 2,
    });
    if (results.includes("done"))
      this.deps.onTransaction(results.filter((r) => r === "done").length);
    return results;
  }

  /** A slot's failure as the participant's typed, retryable error. */
  private attemptError(err: unknown, ids: KafkaErrorIds): KafkaParticipantError {
    if (!(err instanceof SlotError))
      return new Phase2AttemptError(messageOf(err), ids, "commit", err);
    const message = `participant ${this.name}: ${err.message}`;
    if (err.why === "busy") return new TransactionalIdBusyError(message, ids);
    if (err.why === "timeout") return new AttemptTimeoutError(message, ids);
    if (err.why === "closed") return new ParticipantNotStartedError(message, ids);
    const step = err.cause instanceof BatchStepError ? err.cause.step : "commit";
    const cause = err.cause instanceof BatchStepError ? err.cause.cause : err.cause;
    return new Phase2AttemptError(
      `participant ${this.name}: ${step} of the batch on ${ids.transactionalId} failed: ${messageOf(cause)}`,
      ids,
      step,
      cause,
    );
  }

  private async withTimeout<T>(
    timeoutMs: number,
    what: string,
    work: () => Promise<T>,
    ids: { participant: string; branchId?: string; transactionalId?: string } = this.ids(),
  ): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const running = work();
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new AttemptTimeoutError(
              `participant ${this.name}: ${what} took longer than ${Math.max(0, timeoutMs)} ms`,
              ids,
            ),
          ),
        Math.max(0, timeoutMs),
      );
    });
    running.catch(() => undefined); // a late failure after the timeout is not unhandled
    try {
      return await Promise.race([running, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** kafkajs's `ssl`: `tls` read once (an unreadable file is a configuration error), or `ssl`. */
  private sslOptions(): boolean | ConnectionOptions {
    if (this.config.tls === undefined) return this.config.ssl;
    try {
      return {
        ...readTlsFiles(this.config.tls, `participant ${this.name}`),
        rejectUnauthorized: true,
      };
    } catch (e) {
      throw new KafkaConfigError(messageOf(e), this.ids());
    }
  }

  /**
   * A TLS handshake (an untrusted broker certificate, ours refused) or SASL credentials
   * refused at start, as a configuration error: retrying cannot help, unlike an unreachable
   * broker.
   */
  private refusedAtStart(err: unknown): KafkaConfigError | undefined {
    const reason = tlsRefusal(err);
    if (reason !== undefined) {
      return new KafkaConfigError(`participant ${this.name}: TLS: ${reason}`, this.ids(), {
        cause: err,
      });
    }
    if (err instanceof Error && err.name === "KafkaJSSASLAuthenticationError") {
      return new KafkaConfigError(
        `participant ${this.name}: the broker refused the SASL credentials (${err.message}); check sasl`,
        this.ids(),
        { cause: err },
      );
    }
    return undefined;
  }

  private async unavailableOnError<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof KafkaParticipantError) throw err;
      throw new KafkaUnavailableError(
        `participant ${this.name}: ${what}: ${messageOf(err)}`,
        this.ids(),
        { cause: err },
      );
    }
  }

  /** kafkajs's own log lines, at ERROR only, as warnings: the participant handles every error. */
  private kafkaLogCreator(): logCreator {
    return () =>
      ({ namespace, log }) =>
        this.logger.warn(
          {
            participant: this.name,
            namespace,
            ...(log.error === undefined ? {} : { error: String(log.error) }),
          },
          `kafkajs: ${log.message}`,
        );
  }

  private ids(branchId?: string): ParticipantErrorIds {
    return errorIds(this.name, branchId);
  }

  /** G6: a branch id of another cluster never reaches this participant. */
  private assertOwnBranch(branchId: BranchId): PoolLayout {
    const { clusterId, layout } = this.life.assertStarted();
    if (!branchId.startsWith(`${clusterId}:`)) {
      throw new Error(`assertion: branch ${branchId} is not of cluster ${clusterId}`);
    }
    return layout;
  }

  private assertReader(): CommittedReader {
    if (this.reader === undefined) throw new Error("assertion: the marker reader is not open");
    return this.reader;
  }
}

/** Adds `key` to `set`, dropping the oldest key beyond `max`. */
function remember(set: Set<string>, key: string, max: number): void {
  set.delete(key);
  set.add(key);
  if (set.size > max) {
    const oldest = set.values().next();
    if (oldest.done !== true) set.delete(oldest.value);
  }
}

function no(reason: string, detail: string): Vote {
  return { vote: "no", reason, detail };
}

function problemVote(problem: TopicProblem): Vote {
  return no(problem.reason, problem.detail);
}
