/**
 * The node the fuzzer talks to: a real coordinator in this process (test/support/node.ts via
 * the API harness) with PostgreSQL pg-a and pg-b, a Redis participant and a Kafka participant
 * on the deploy/local services, each in a namespace, marker topic and transactional-id prefix
 * of this run only, so that nothing the fuzzer sends can touch another test's data.
 */
import { randomBytes } from "node:crypto";
import { startApiNode, type ApiNode } from "../integration/api/harness.js";
import { services } from "../support/services.js";

/**
 * Short transaction deadlines, so that what the fuzzer begins and leaves ends by itself and
 * frees its in-flight slot (the harness keeps 256, under the server's max_prepared_transactions).
 */
const fuzzLimits = { timeoutMsMax: 60_000, timeoutMsDefault: 10_000 };

export async function startFuzzNode(): Promise<ApiNode> {
  const run = randomBytes(5).toString("hex");
  return startApiNode({
    limits: fuzzLimits,
    participants: [
      { name: "redis-1", kind: "redis", url: services.redisUrl, namespace: `vfz${run}` },
      {
        name: "kafka-1",
        kind: "kafka",
        brokers: [...services.kafkaBrokers],
        clientId: `verdict-fuzz-${run}`,
        markerTopic: `verdict-fuzz-markers-${run}`,
        markerPartitions: 1,
        transactionalIdPrefix: `verdict-fuzz-${run}`,
        poolSize: 4,
        attemptTimeoutMs: 10_000,
      },
    ],
  });
}
