/**
 * A group-less `read_committed` reader of single partitions, for the marker check (and for
 * tests that read back what a commit made visible).
 *
 * kafkajs 2.2.4 has no public consumer without a group (every consumer joins one; there is no
 * `assign`), so this reader sends ListOffsets and Fetch through kafkajs's own internal cluster,
 * reached through one private symbol of the `Kafka` object. That symbol is asserted present:
 * if kafkajs ever changes, the reader fails loudly at start instead of reading wrongly. The
 * pin of kafkajs in package-lock.json must stay exact.
 *
 * Under read_committed the broker stops at the last stable offset (LSO) and lists the aborted
 * transactions of the range, but still sends their records: dropping them is the client's job
 * (`committedRecords`).
 */
import type { Kafka } from "kafkajs";
import { messageOf } from "../common/errors.js";
import { KafkaUnavailableError, kafkaErrorTypeOf } from "./errors.js";

export const isolationLevels = { readUncommitted: 0, readCommitted: 1 } as const;
type IsolationLevel = (typeof isolationLevels)[keyof typeof isolationLevels];

/** ListOffsets' "latest" timestamp: the LSO under read_committed, else the high watermark. */
const latestTimestamp = -1;
/** ListOffsets' "earliest" timestamp: the log start offset. */
const earliestTimestamp = -2;
const fetchWaitMs = 100;
const settlePauseMs = 20;
const stablePollMsMax = 50;

/** A committed data record (never a control record, never one of an aborted transaction). */
export interface CommittedRecord {
  readonly offset: bigint;
  readonly key: string | null;
  readonly value: string | null;
  readonly headers: Readonly<Record<string, string>>;
  /** The record's timestamp (broker time for a `LogAppendTime` topic). */
  readonly timestampMs: number;
}

/** Everything committed in [0, LSO) of one partition, as of the read. */
export interface PartitionRead {
  readonly records: CommittedRecord[];
  /** Values of `records`, for tests. */
  readonly values: string[];
  /** Values of every data record the broker returned, aborted ones included. */
  readonly rawValues: string[];
  readonly lastStableOffset: bigint;
  readonly highWatermark: bigint;
}

/** Offsets [fromOffset, untilOffset). */
export interface OffsetRange {
  readonly fromOffset: bigint;
  readonly untilOffset: bigint;
}

export interface CommittedReaderOptions {
  /** Names the reader's owner (a participant) in its errors. */
  readonly owner?: string;
  /** Bytes asked for per fetch (the broker still returns at least one whole batch). */
  readonly fetchBytesMax?: number;
  /** Fetches one scan may send; reached only by a partition far larger than expected. */
  readonly fetchesMax?: number;
}

// ---- the slice of kafkajs 2.2.4's internal Cluster and Broker that the reader uses ----

export interface FetchedRecord {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | Buffer[] | undefined>;
  isControlRecord: boolean;
  batchContext: { producerId: string; inTransaction: boolean };
}
export interface FetchedPartition {
  partition: number;
  errorCode: number;
  highWatermark: string;
  lastStableOffset: string;
  abortedTransactions: { producerId: string; firstOffset: string }[];
  messages: FetchedRecord[];
}
interface InternalBroker {
  fetch(request: {
    isolationLevel: number;
    maxWaitTime: number;
    minBytes: number;
    maxBytes: number;
    topics: {
      topic: string;
      partitions: { partition: number; fetchOffset: string; maxBytes: number }[];
    }[];
  }): Promise<{ responses: { topicName: string; partitions: FetchedPartition[] }[] }>;
  listOffsets(request: {
    isolationLevel: number;
    topics: { topic: string; partitions: { partition: number; timestamp: number }[] }[];
  }): Promise<{
    responses: { topic: string; partitions: { partition: number; offset: string }[] }[];
  }>;
}
interface InternalCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  refreshMetadata(): Promise<void>;
  refreshMetadataIfNecessary(): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(query: { nodeId: string }): Promise<InternalBroker>;
}
type CreateCluster = (options: {
  isolationLevel: number;
  allowAutoTopicCreation: boolean;
  metadataMaxAge: number;
}) => InternalCluster;

function createInternalCluster(client: Kafka): InternalCluster {
  const symbol = Object.getOwnPropertySymbols(client).find(
    (s) => s.description === "private:Kafka:createCluster",
  );
  if (symbol === undefined) {
    throw new Error("assertion: kafkajs changed: no private:Kafka:createCluster (pinned 2.2.4)");
  }
  const create = Reflect.get(client, symbol) as CreateCluster | undefined;
  if (typeof create !== "function") {
    throw new Error("assertion: kafkajs changed: private:Kafka:createCluster is not a function");
  }
  return create.call(client, {
    isolationLevel: isolationLevels.readCommitted,
    allowAutoTopicCreation: false,
    metadataMaxAge: 300_000,
  });
}

/**
 * Drops records of aborted transactions, as the Java consumer does: an aborted transaction
 * starts at its listed first offset and ends at its producer's next control record. Every
 * aborted transaction that starts at or before a record is entered before that record is
 * judged (the broker also lists those that began before the fetch offset). Control records
 * are dropped too.
 */
export function committedRecords(
  partition: Pick<FetchedPartition, "abortedTransactions" | "messages">,
): FetchedRecord[] {
  const pending = [...partition.abortedTransactions].sort((a, b) =>
    BigInt(a.firstOffset) < BigInt(b.firstOffset) ? -1 : 1,
  );
  const aborting = new Set<string>();
  const kept: FetchedRecord[] = [];
  let next = 0;
  for (const record of partition.messages) {
    const offset = BigInt(record.offset);
    for (; next < pending.length && BigInt(pending[next]!.firstOffset) <= offset; next += 1) {
      aborting.add(pending[next]!.producerId);
    }
    const { producerId, inTransaction } = record.batchContext;
    if (record.isControlRecord) aborting.delete(producerId);
    else if (!(inTransaction && aborting.has(producerId))) kept.push(record);
  }
  return kept;
}

function toCommittedRecord(record: FetchedRecord): CommittedRecord {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(record.headers)) {
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) headers[name] = first.toString("utf8");
  }
  return {
    offset: BigInt(record.offset),
    key: record.key === null ? null : record.key.toString("utf8"),
    value: record.value === null ? null : record.value.toString("utf8"),
    headers,
    timestampMs: Number(record.timestamp),
  };
}

/** How `scanFetched` reads: one read_committed fetch at an offset, and the error for doubt. */
export interface ScanSource {
  fetchAt(offset: bigint): Promise<Pick<FetchedPartition, "abortedTransactions" | "messages">>;
  doubt(what: string): Error;
  readonly fetchesMax: number;
}

/**
 * Hands the committed records of [fromOffset, untilOffset) to `visit` in offset order until
 * it returns true; returns whether it did. `untilOffset` must not exceed the LSO. Below the
 * LSO the log always holds a record at or after any offset (the active segment is never
 * compacted), so an empty or backward fetch is doubt, never proof of absence: it throws.
 */
export async function scanFetched(
  source: ScanSource,
  range: OffsetRange,
  visit: (record: CommittedRecord) => boolean,
  raw?: (record: FetchedRecord) => void,
): Promise<boolean> {
  let next = range.fromOffset;
  for (let fetches = 0; next < range.untilOffset; fetches += 1) {
    if (fetches >= source.fetchesMax) {
      throw source.doubt(
        `a scan did not reach offset ${range.untilOffset} in ${source.fetchesMax} fetches`,
      );
    }
    const data = await source.fetchAt(next);
    const last = data.messages.at(-1);
    if (last === undefined || BigInt(last.offset) < next) {
      throw source.doubt(
        `a fetch at offset ${next} returned no record before ${range.untilOffset}`,
      );
    }
    const from = next;
    const inRange = (r: FetchedRecord) => {
      const offset = BigInt(r.offset);
      return offset >= from && offset < range.untilOffset;
    };
    if (raw !== undefined)
      data.messages.filter((r) => inRange(r) && !r.isControlRecord).forEach(raw);
    for (const record of committedRecords(data)) {
      if (inRange(record) && visit(toCommittedRecord(record))) return true;
    }
    next = BigInt(last.offset) + 1n;
  }
  return false;
}

export class CommittedReader {
  private readonly owner: string;
  private readonly fetchBytesMax: number;
  private readonly fetchesMax: number;

  private constructor(
    private readonly cluster: InternalCluster,
    options: CommittedReaderOptions,
  ) {
    this.owner = options.owner ?? "committed-reader";
    this.fetchBytesMax = options.fetchBytesMax ?? 1024 * 1024;
    this.fetchesMax = options.fetchesMax ?? 100_000;
  }

  /** Connects a reader on `client`'s brokers (its own connections, no consumer group). */
  static async open(client: Kafka, options: CommittedReaderOptions = {}): Promise<CommittedReader> {
    const cluster = createInternalCluster(client);
    await cluster.connect();
    return new CommittedReader(cluster, options);
  }

  async close(): Promise<void> {
    await this.cluster.disconnect();
  }

  /** The end of what read_committed readers may see: every transaction below it is decided. */
  async lastStableOffset(topic: string, partition: number): Promise<bigint> {
    return this.listOffset(topic, partition, latestTimestamp, isolationLevels.readCommitted);
  }

  async highWatermark(topic: string, partition: number): Promise<bigint> {
    return this.listOffset(topic, partition, latestTimestamp, isolationLevels.readUncommitted);
  }

  /**
   * Waits until the LSO reaches `offset`: every transaction that began below it is decided, so
   * a read_committed scan up to `offset` sees all of them. Throws a retryable error after
   * `waitMsMax` (a transaction left open, e.g. by a crashed producer, until it is fenced or times out).
   */
  async awaitStable(
    topic: string,
    partition: number,
    offset: bigint,
    waitMsMax: number,
  ): Promise<void> {
    const startedMs = Date.now();
    for (let pauseMs = 2; ; pauseMs = Math.min(pauseMs * 2, stablePollMsMax)) {
      const stable = await this.lastStableOffset(topic, partition);
      if (stable >= offset) return;
      if (Date.now() - startedMs >= waitMsMax) {
        throw this.unavailable(
          topic,
          partition,
          `the last stable offset stayed at ${stable}, below ${offset}, for ${waitMsMax} ms ` +
            `(a transaction is open there)`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }

  /** The first offset the partition still holds (retention may have removed earlier ones). */
  async logStartOffset(topic: string, partition: number): Promise<bigint> {
    return this.listOffset(topic, partition, earliestTimestamp, isolationLevels.readCommitted);
  }

  /**
   * Hands the committed records of [fromOffset, untilOffset) to `visit`, in offset order,
   * until `visit` returns true (found). `untilOffset` must not exceed the LSO. Returns
   * whether `visit` stopped the scan.
   */
  async scan(
    topic: string,
    partition: number,
    range: OffsetRange,
    visit: (record: CommittedRecord) => boolean,
  ): Promise<boolean> {
    return this.scanRecords(topic, partition, range, visit);
  }

  /** `scan`, also handing every data record the broker returned (aborted ones too) to `raw`. */
  private async scanRecords(
    topic: string,
    partition: number,
    range: OffsetRange,
    visit: (record: CommittedRecord) => boolean,
    raw?: (record: FetchedRecord) => void,
  ): Promise<boolean> {
    return scanFetched(
      {
        fetchAt: (offset) => this.fetch(topic, partition, offset),
        doubt: (what) => this.unavailable(topic, partition, what),
        fetchesMax: this.fetchesMax,
      },
      range,
      visit,
      raw,
    );
  }

  /** Reads [0, LSO as of the call): every transaction decided by then. */
  async readPartition(topic: string, partition: number): Promise<PartitionRead> {
    const lastStableOffset = await this.lastStableOffset(topic, partition);
    const highWatermark = await this.highWatermark(topic, partition);
    const records: CommittedRecord[] = [];
    const rawValues: string[] = [];
    await this.scanRecords(
      topic,
      partition,
      { fromOffset: 0n, untilOffset: lastStableOffset },
      (record) => {
        records.push(record);
        return false;
      },
      (record) => rawValues.push(record.value?.toString("utf8") ?? ""),
    );
    const values = records.map((r) => r.value ?? "");
    return { records, values, rawValues, lastStableOffset, highWatermark };
  }

  /**
   * Reads once no transaction is open on the partition. A commit returns once the coordinator
   * logged the decision; the markers that move the LSO are written just after.
   */
  async readSettled(topic: string, partition: number, readsMax = 100): Promise<PartitionRead> {
    for (let reads = 1; ; reads += 1) {
      const read = await this.readPartition(topic, partition);
      if (read.lastStableOffset === read.highWatermark) return read;
      if (reads >= readsMax) {
        throw this.unavailable(topic, partition, `a transaction stayed open over ${reads} reads`);
      }
      await new Promise((resolve) => setTimeout(resolve, settlePauseMs));
    }
  }

  // ---- plumbing ----

  private async fetch(topic: string, partition: number, offset: bigint): Promise<FetchedPartition> {
    const response = await this.onLeader(topic, partition, (broker) =>
      broker.fetch({
        isolationLevel: isolationLevels.readCommitted,
        maxWaitTime: fetchWaitMs,
        minBytes: 1,
        maxBytes: this.fetchBytesMax,
        topics: [
          {
            topic,
            partitions: [
              { partition, fetchOffset: offset.toString(), maxBytes: this.fetchBytesMax },
            ],
          },
        ],
      }),
    );
    const data = response.responses[0]?.partitions[0];
    if (data === undefined) throw this.unavailable(topic, partition, "empty fetch response");
    if (data.errorCode !== 0) {
      await this.cluster.refreshMetadata().catch(() => undefined);
      throw this.unavailable(topic, partition, `fetch error code ${data.errorCode}`);
    }
    return data;
  }

  private async listOffset(
    topic: string,
    partition: number,
    timestamp: number,
    isolationLevel: IsolationLevel,
  ): Promise<bigint> {
    const listed = await this.onLeader(topic, partition, (broker) =>
      broker.listOffsets({
        isolationLevel,
        topics: [{ topic, partitions: [{ partition, timestamp }] }],
      }),
    );
    const offset = listed.responses[0]?.partitions[0]?.offset;
    if (offset === undefined)
      throw this.unavailable(topic, partition, "empty ListOffsets response");
    const value = BigInt(offset);
    if (timestamp < 0 && value < 0n) {
      throw this.unavailable(topic, partition, `no offset for timestamp ${timestamp} (${value})`);
    }
    return value;
  }

  /** Runs `request` on the partition's leader; any failure refreshes metadata and becomes retryable. */
  private async onLeader<T>(
    topic: string,
    partition: number,
    request: (broker: InternalBroker) => Promise<T>,
  ): Promise<T> {
    try {
      await this.cluster.addTargetTopic(topic);
      await this.cluster.refreshMetadataIfNecessary();
      const nodeId = Object.keys(this.cluster.findLeaderForPartitions(topic, [partition]))[0];
      if (nodeId === undefined) {
        await this.cluster.refreshMetadata();
        throw new Error("no leader known");
      }
      return await request(await this.cluster.findBroker({ nodeId }));
    } catch (err) {
      if (err instanceof KafkaUnavailableError) throw err;
      await this.cluster.refreshMetadata().catch(() => undefined);
      const type = kafkaErrorTypeOf(err);
      throw this.unavailable(
        topic,
        partition,
        `${type === undefined ? "" : `${type}: `}${messageOf(err)}`,
        err,
      );
    }
  }

  private unavailable(
    topic: string,
    partition: number,
    what: string,
    cause?: unknown,
  ): KafkaUnavailableError {
    return new KafkaUnavailableError(
      `${this.owner}: reading ${topic}/${partition}: ${what}`,
      { participant: this.owner, topic },
      { cause },
    );
  }
}
