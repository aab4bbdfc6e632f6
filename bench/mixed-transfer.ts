/**
 * The mixed transfer's part of bench/transfer.ts (docs/bench.md): its own Verdict node with
 * pg-a, pg-b, Redis and Kafka participants; M0 (by hand), M and M1 (through Verdict,
 * mixed-transfer-scenarios.ts) measured one after the other; phase 2 drained everywhere;
 * the Redis counters and the Kafka events checked against the confirmed transfers (the money
 * is checked with the rest of the run by bench/money.ts); the run's topics and keys removed.
 */
import { VerdictClient } from "../client/index.js";
import { say } from "./args.js";
import { scrapeMetrics } from "./breakdown.js";
import {
  cleanRedis,
  compareCounts,
  countersTotal,
  mixedParticipants,
  openMixedClients,
  waitEvents,
  waitStaged,
} from "./mixed-services.js";
import type { MixedScenario } from "./mixed-scenarios.js";
import {
  directMixed,
  verdictMixed,
  verdictMixedOneRequest,
  type MixedTransferTarget,
} from "./mixed-transfer-scenarios.js";
import { drain, measure, type Measured } from "./measure.js";
import { startNodeProcess } from "./node-process.js";
import type { Databases } from "./scenarios.js";

const names = { redis: "redis-bench", kafka: "kafka-bench" } as const;

export interface MixedOptions {
  readonly clients: number;
  readonly "duration-s": number;
  readonly "warmup-s": number;
  readonly "tx-max": number;
  readonly node: "dist" | "src";
  readonly prepareOrder: string;
}

export interface MixedResult {
  readonly measured: Measured<MixedScenario>[];
  /** Branches of the node's cluster still prepared in PostgreSQL after the drain. */
  readonly verdictLeft: string[];
  /** The node's PostgreSQL schema (dropped by the money check when nothing was left). */
  readonly schema: string;
  /** Whether the Redis and Kafka checks held. */
  readonly ok: boolean;
}

export async function runMixedTransfer(
  db: Databases,
  o: MixedOptions,
  runId: string,
  signal: AbortSignal,
): Promise<MixedResult> {
  const schema = `vbench_${runId}_mixed`;
  const namespace = `vbench-${runId}`;
  const target: MixedTransferTarget = {
    db,
    counterPrefix: `bench-${runId}:acct:`,
    topic: `verdict-bench-mixed-${runId}`,
    names,
  };
  const markerTopic = `verdict-bench-markers-${runId}`;
  const { kafka, admin, redis } = await openMixedClients(runId, target.topic);
  try {
    const node = await startNodeProcess({
      from: o.node,
      participants: [
        { name: "pg-a", connectionString: db.urlA, lockTimeoutMs: db.lockTimeoutMs },
        { name: "pg-b", connectionString: db.urlB, lockTimeoutMs: db.lockTimeoutMs },
      ],
      otherParticipants: mixedParticipants({ runId, names, namespace, markerTopic }),
      protocol: { prepareOrder: o.prepareOrder },
      schema,
      poolSize: o.clients,
      inFlightTransactionsMax: 256,
      log: say,
    });
    say(`mixed node ${node.url}, cluster ${node.clusterId}, schema ${schema}`);
    const verdict = new VerdictClient({ baseUrl: node.url, token: node.token });
    const measured: Measured<MixedScenario>[] = [];
    let verdictLeft: string[] = [];
    let eventsFound = 0;
    try {
      const makers = [
        () => directMixed(target, o.clients, { redis, kafka, runId }),
        () => Promise.resolve(verdictMixed(verdict, target)),
        () => Promise.resolve(verdictMixedOneRequest(verdict, target)),
      ];
      for (const make of makers) {
        if (signal.aborted) break;
        const scenario = await make();
        try {
          const scrape = () => scrapeMetrics(node.url);
          measured.push(await measure(scenario, o, () => node.cpuMs(), signal, scrape));
        } finally {
          await scenario.close();
        }
      }
      verdictLeft = await drain(`${node.clusterId}:`, [db.urlA, db.urlB]);
      await waitStaged(redis, `${namespace}:prepared`);
      eventsFound = await waitEvents(
        kafka,
        target.topic,
        sum(measured, (s) => s.events()),
      );
    } finally {
      verdict.close();
      await node.stop();
    }
    const staged = await redis.scard(`${namespace}:prepared`);
    let ok = compareCounts(
      [
        [
          "mixed: Redis counters credited",
          sum(measured, (s) => s.credited()),
          await countersTotal(redis, target.counterPrefix, db.accounts),
        ],
        ["mixed: Kafka events", sum(measured, (s) => s.events()), eventsFound],
      ],
      measured.reduce((n, m) => n + m.result.errors, 0),
      say,
    );
    if (staged > 0) {
      ok = false;
      say(`mixed: ${staged} Redis branches left staged`);
    }
    return { measured, verdictLeft, schema, ok };
  } finally {
    await cleanRedis(redis, target.counterPrefix, db.accounts, namespace);
    redis.disconnect();
    await admin.deleteTopics({ topics: [target.topic, markerTopic] }).catch(() => undefined);
    await admin.disconnect();
  }
}

function sum(measured: readonly Measured<MixedScenario>[], f: (s: MixedScenario) => number) {
  return measured.reduce((n, m) => n + f(m.scenario), 0);
}
