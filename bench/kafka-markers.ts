/**
 * Kafka marker-check bench: how long the Kafka participant's marker check (the step between
 * the fence and the produce of every phase-2 attempt) takes with an empty marker topic, and
 * with `--markers` markers in it (default 100,000, produced in big transactional batches),
 * reported as a ratio. The check starts at the offset the branch's yes vote recorded (the
 * marker partition's high watermark at prepare), so markers older than the vote should cost
 * nothing: the ratio should stay near 1. For contrast it also times the same check without
 * that evidence (from the start of the partition, what an operator-forced branch costs), and
 * the participant's whole already-done attempt (fence + check) in both states.
 *
 *   node --import tsx bench/kafka-markers.ts [--markers N] [--rounds R] [--batch B]
 *
 * Needs the Kafka broker of deploy/local. Every run uses its own marker topic and deletes it.
 */
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import kafkajs from "kafkajs";
import { markerCommitted } from "../participants/kafka/commit-batch.js";
import { encodeMarkerFloor } from "../participants/kafka/evidence.js";
import { markerPartitionOf, type PoolLayout } from "../participants/kafka/layout.js";
import { createKafkaParticipant } from "../participants/kafka/participant.js";
import { CommittedReader } from "../participants/kafka/reader.js";
import type { BranchId } from "../participants/participant.js";
import { services } from "../test/support/services.js";
import { parseOptions, runMain, say } from "./args.js";
import {
  LatencyRecorder,
  formatMs,
  formatRatio,
  formatTable,
  type LatencySummary,
} from "./stats.js";

const { Kafka, logLevel } = kafkajs;

const spec = {
  markers: { default: 100_000, min: 1, max: 10_000_000, help: "markers put in the full topic" },
  rounds: { default: 200, min: 1, max: 100_000, help: "timed checks per condition" },
  batch: { default: 5_000, min: 1, max: 100_000, help: "markers per fill transaction" },
} as const;

/** Timed checks of the unbounded scan (each reads a whole marker partition). */
const unboundedRoundsMax = 10;
const markerPartitions = 3;
/** The participant waits half its default 30 s attempt bound for the LSO. */
const stableWaitMsMax = 15_000;
/** Unmeasured checks first: connections, metadata and JIT warm up. */
const warmUpRounds = 20;

interface Row {
  readonly name: string;
  readonly summary: LatencySummary;
  /** The row this one is compared with (same step, empty topic). */
  readonly baseline?: string;
}

async function main(argv: readonly string[]): Promise<number> {
  const options = parseOptions("node --import tsx bench/kafka-markers.ts", spec, argv);
  const run = randomBytes(4).toString("hex");
  const clusterId = `bench-${run}`;
  const markerTopic = `verdict-bench-markers-${run}`;
  const dataTopic = `verdict-bench-data-${run}`;
  const layout: PoolLayout = {
    transactionalIdPrefix: `verdict-bench-${run}`,
    poolSize: 4,
    markerPartitions,
  };
  const kafka = new Kafka({
    clientId: `verdict-bench-${run}`,
    brokers: [...services.kafkaBrokers],
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  const participant = createKafkaParticipant({
    name: "kafka-bench",
    brokers: [...services.kafkaBrokers],
    markerTopic,
    markerPartitions,
    transactionalIdPrefix: layout.transactionalIdPrefix,
    poolSize: layout.poolSize,
  });
  const reader = await CommittedReader.open(kafka, { owner: "bench" });
  let branchCount = 0;
  const branchId = () => `${clusterId}:b${run}-${++branchCount}:1` as BranchId;
  const rows: Row[] = [];
  say(
    `kafka marker bench: ${options.markers} markers over ${markerPartitions} partitions, ` +
      `${options.rounds} checks per condition`,
  );
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic: dataTopic, numPartitions: 1, replicationFactor: 1 }],
    });
    await participant.start(clusterId);

    /** The check for absent markers: the worst case, it reads the whole window. */
    const timeChecks = async (
      name: string,
      rounds: number,
      withEvidence: boolean,
      baseline?: string,
    ) => {
      const recorder = new LatencyRecorder(rounds);
      for (let i = 0; i < rounds; i += 1) {
        const id = branchId();
        const evidence = withEvidence
          ? await evidenceOf(reader, layout, markerTopic, id)
          : undefined;
        const startMs = performance.now();
        const found = await markerCommitted(reader, {
          markerTopic,
          layout,
          branchId: id,
          evidence,
          stableWaitMsMax,
        });
        recorder.record(performance.now() - startMs);
        if (found) throw new Error(`assertion: ${name}: a never-committed branch has a marker`);
      }
      rows.push({ name, summary: recorder.summary(), baseline });
    };
    /** The participant's whole already-done attempt: fence, check, answer. */
    const timeAlreadyDone = async (name: string, baseline?: string) => {
      const id = branchId();
      const payload = { kind: "messages" as const, messages: [{ topic: dataTopic, value: id }] };
      const vote = await participant.prepare(
        { branchId: id, payload },
        { deadlineMs: Date.now() + 10_000 },
      );
      if (vote.vote !== "yes") throw new Error(`assertion: prepare voted ${vote.vote}`);
      const decided = { term: 1, decidedAtMs: Date.now(), evidence: vote.evidence };
      const first = await participant.commit({ branchId: id, payload }, decided);
      if (first.outcome !== "done") throw new Error(`assertion: first commit ${first.outcome}`);
      const recorder = new LatencyRecorder(options.rounds);
      for (let i = 0; i < options.rounds; i += 1) {
        const startMs = performance.now();
        const again = await participant.commit({ branchId: id, payload }, decided);
        recorder.record(performance.now() - startMs);
        if (again.outcome !== "already-done") {
          throw new Error(`assertion: repeated commit answered ${again.outcome}`);
        }
      }
      rows.push({ name, summary: recorder.summary(), baseline });
    };

    const emptyCheck = "check, empty topic";
    const emptyAttempt = "already-done attempt, empty topic";
    await timeChecks("warm-up (not compared)", warmUpRounds, true);
    await timeChecks(emptyCheck, options.rounds, true);
    await timeAlreadyDone(emptyAttempt);

    const fillStartMs = performance.now();
    await fill(kafka, markerTopic, layout, clusterId, run, options.markers, options.batch);
    const fillMs = performance.now() - fillStartMs;
    say(`filled ${options.markers} markers in ${(fillMs / 1000).toFixed(1)} s`);

    await timeChecks(`check, ${options.markers} markers`, options.rounds, true, emptyCheck);
    await timeAlreadyDone(`already-done attempt, ${options.markers} markers`, emptyAttempt);
    await timeChecks(
      `check, ${options.markers} markers, no evidence (from the start)`,
      Math.min(options.rounds, unboundedRoundsMax),
      false,
      emptyCheck,
    );
    const filled = await markerCommitted(reader, {
      markerTopic,
      layout,
      branchId: fillKey(clusterId, run, options.markers - 1),
      evidence: undefined,
      stableWaitMsMax,
    });
    if (!filled) throw new Error("assertion: the last filled marker was not found");
  } finally {
    await participant.close();
    await reader.close();
    await admin.deleteTopics({ topics: [markerTopic, dataTopic] }).catch(() => undefined);
    await admin.disconnect();
  }
  printRows(rows);
  return 0;
}

/** What a yes vote would record for `branchId` now: its marker partition's high watermark. */
async function evidenceOf(
  reader: CommittedReader,
  layout: PoolLayout,
  markerTopic: string,
  branchId: string,
): Promise<string> {
  const partition = markerPartitionOf(layout, branchId);
  return encodeMarkerFloor(partition, await reader.highWatermark(markerTopic, partition));
}

function fillKey(clusterId: string, run: string, i: number): string {
  return `${clusterId}:fill${run}-${i}:1`;
}

/** `count` markers in transactions of `batch`, like committed branches' markers. */
async function fill(
  kafka: InstanceType<typeof Kafka>,
  topic: string,
  layout: PoolLayout,
  clusterId: string,
  run: string,
  count: number,
  batch: number,
): Promise<void> {
  const producer = kafka.producer({
    transactionalId: `verdict-bench-fill-${run}`,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  try {
    for (let start = 0; start < count; start += batch) {
      const transaction = await producer.transaction();
      const messages = Array.from({ length: Math.min(batch, count - start) }, (_, j) => {
        const key = fillKey(clusterId, run, start + j);
        return {
          key,
          value: JSON.stringify({ term: 1, decidedAtMs: Date.now() }),
          partition: markerPartitionOf(layout, key),
        };
      });
      await transaction.send({ topic, messages });
      await transaction.commit();
    }
  } finally {
    await producer.disconnect();
  }
}

function printRows(rows: readonly Row[]): void {
  const p50Of = (name: string | undefined) =>
    rows.find((r) => r.name === name)?.summary.p50Ms ?? Number.NaN;
  const table = [["condition", "runs", "p50 ms", "p99 ms", "max ms", "p50 vs empty topic"]];
  for (const { name, summary, baseline } of rows) {
    table.push([
      name,
      String(summary.count),
      formatMs(summary.p50Ms),
      formatMs(summary.p99Ms),
      formatMs(summary.maxMs),
      baseline === undefined ? "" : formatRatio(summary.p50Ms, p50Of(baseline)),
    ]);
  }
  say(`\n${formatTable(table)}\n`);
}

runMain(main);
