/**
 * The Kafka ACL checklist of docs/security.md (the `kafka-acls.sh` commands, read from the
 * document itself) is enough for the Kafka participant and each of its operations is needed,
 * on a throwaway KRaft broker running the StandardAuthorizer (`allow.everyone.if.no.acl.found`
 * off) whose only client listener is SASL_SSL; the participant logs in with SCRAM-SHA-512. The
 * broker takes 15–40 s to start.
 * - with exactly the documented ACLs the participant starts (marker topic verified, layout
 *   record written), fences its transactional ids, votes yes on a branch and no on a message
 *   larger than the topic takes, commits the branch and finds its marker; the message is read
 *   back read_committed by the super user;
 * - with any one operation of the required commands taken away, the same run fails;
 * - the optional cluster DESCRIBE_CONFIGS lets the participant name the broker's authorizer;
 * - the user is refused what the checklist does not grant: another topic, another
 *   transactional id, reading a data topic, deleting topics, changing a topic's configs,
 *   creating ACLs; a service user with WRITE on its data topic may not write the marker topic;
 * - a wrong SCRAM password stops `start` with a configuration error.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import kafkajs, {
  type Admin,
  type AclEntry,
  type Kafka,
  type KafkaConfig,
  type SASLOptions,
} from "kafkajs";
import type { BranchId } from "../../participants/participant.js";
import { createKafkaParticipant } from "../../participants/kafka/participant.js";
import type { KafkaParticipantConfigInput } from "../../participants/kafka/config.js";
import { CommittedReader } from "../../participants/kafka/reader.js";
import { commitWithRetries, payloadOf, phase2, prepareCtx } from "../integration/kafka/helpers.js";
import { createTestCa, type TestCa } from "../support/tls-ca.js";
import { startThrowawayKafka, type ThrowawayKafka } from "../support/throwaway-kafka.js";

const {
  Kafka: KafkaClient,
  logLevel,
  AclOperationTypes,
  AclPermissionTypes,
  AclResourceTypes,
  ResourcePatternTypes,
} = kafkajs;

const run = randomBytes(3).toString("hex");
const secret = () => randomBytes(18).toString("base64url");
const passwords = { admin: secret(), verdict: secret(), service: secret() };
/** The names the checklist's commands use, on this private broker. */
const markerTopic = "verdict-markers";
const dataTopic = "transfers";
const otherTopic = "other-service";
const prefix = "verdict-acl";
/** The data topic's `max.message.bytes`: a larger message must get a no vote. */
const dataTopicMessageBytesMax = 2_048;
const aclPropagationWaitMs = 10_000;

let ca: TestCa;
let broker: ThrowawayKafka;
let superKafka: Kafka;
let superAdmin: Admin;
let documented: AclEntry[];
let n = 0;

/** kafkajs adds fields to the object it is given: a fresh one each time. */
const scram = (user: keyof typeof passwords): SASLOptions => ({
  mechanism: "scram-sha-512",
  username: user,
  password: passwords[user],
});

const client = (user: keyof typeof passwords, extra: Partial<KafkaConfig> = {}): Kafka =>
  new KafkaClient({
    clientId: `acl-test-${user}-${run}`,
    brokers: [broker.broker],
    ssl: { ca: readFileSync(ca.caFile) },
    sasl: scram(user),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3_000,
    retry: { retries: 0 },
    ...extra,
  });

/**
 * The `kafka-acls.sh … --add` commands of docs/security.md's Kafka checklist, one binding per
 * `--operation`, with the checklist's placeholders replaced by this test's names.
 */
async function documentedAcls(): Promise<AclEntry[]> {
  const doc = await readFile(new URL("../../docs/security.md", import.meta.url), "utf8");
  const section = doc.slice(doc.indexOf("### Kafka (ACLs)"), doc.indexOf("## API roles"));
  const commands = section
    .replace(/\\\n\s*/g, " ")
    .split("\n")
    .filter((line) => line.startsWith("kafka-acls.sh "));
  assert.ok(commands.length > 0, "docs/security.md lists no kafka-acls.sh command");
  return commands.flatMap(bindingsOf);
}

function bindingsOf(command: string): AclEntry[] {
  const arg = (flag: string) => new RegExp(`${flag} '?([^' ]+)'?`).exec(command)?.[1];
  const principal = arg("--allow-principal");
  assert.equal(principal, "User:verdict", command);
  const names: Record<string, string> = { "<prefix>-": `${prefix}-`, "<markers>": markerTopic };
  const resource: Pick<AclEntry, "resourceType" | "resourceName"> =
    arg("--transactional-id") !== undefined
      ? {
          resourceType: AclResourceTypes.TRANSACTIONAL_ID,
          resourceName: arg("--transactional-id")!,
        }
      : arg("--topic") !== undefined
        ? { resourceType: AclResourceTypes.TOPIC, resourceName: arg("--topic")! }
        : { resourceType: AclResourceTypes.CLUSTER, resourceName: "kafka-cluster" };
  assert.ok(command.includes("--cluster") || resource.resourceType !== AclResourceTypes.CLUSTER);
  const operations = [...command.matchAll(/--operation (\w+)/g)].map((m) => m[1]!);
  assert.ok(operations.length > 0, command);
  return operations.map((op) => {
    const operation =
      AclOperationTypes[op.replace(/(?<=.)([A-Z])/g, "_$1").toUpperCase() as "READ"];
    assert.ok(operation !== undefined, `unknown operation ${op} in ${command}`);
    return {
      ...resource,
      resourceName: names[resource.resourceName] ?? resource.resourceName,
      resourcePatternType:
        arg("--resource-pattern-type") === "prefixed"
          ? ResourcePatternTypes.PREFIXED
          : ResourcePatternTypes.LITERAL,
      principal: "User:verdict",
      host: "*",
      operation,
      permissionType: AclPermissionTypes.ALLOW,
    };
  });
}

/** kafkajs's enums are plain objects at run time, without names by value. */
const nameOf = (values: object, value: number) =>
  Object.entries(values).find(([, v]) => v === value)?.[0] ?? String(value);

const describeAcl = (acl: AclEntry) =>
  `${nameOf(AclOperationTypes, acl.operation)} on ${nameOf(AclResourceTypes, acl.resourceType)} ${acl.resourceName}`;

/** Grants or revokes `acls`, then waits until the broker's authorizer shows the change. */
async function setAcls(acls: AclEntry[], present: boolean): Promise<void> {
  if (present) await superAdmin.createAcls({ acl: acls });
  else await superAdmin.deleteAcls({ filters: acls });
  const until = Date.now() + aclPropagationWaitMs;
  for (const acl of acls) {
    for (;;) {
      const found = await superAdmin.describeAcls(acl);
      if (found.resources.length > 0 === present) break;
      assert.ok(Date.now() < until, `ACL ${describeAcl(acl)} did not propagate`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

const isCluster = (acl: AclEntry) => acl.resourceType === AclResourceTypes.CLUSTER;

before(async () => {
  ca = await createTestCa();
  broker = await startThrowawayKafka({
    caFile: ca.caFile,
    certFile: ca.serverCertFile,
    keyFile: ca.serverKeyFile,
    clientAuth: "none",
    saslPlainUsers: { admin: passwords.admin },
    scramSha512Users: passwords,
    superUsers: ["admin"],
  });
  superKafka = client("admin");
  superAdmin = superKafka.admin();
  await superAdmin.connect();
  await superAdmin.createTopics({
    waitForLeaders: true,
    topics: [
      {
        topic: markerTopic,
        numPartitions: 1,
        replicationFactor: 1,
        configEntries: [
          { name: "cleanup.policy", value: "compact,delete" },
          { name: "message.timestamp.type", value: "LogAppendTime" },
        ],
      },
      {
        topic: dataTopic,
        numPartitions: 1,
        replicationFactor: 1,
        configEntries: [{ name: "max.message.bytes", value: String(dataTopicMessageBytesMax) }],
      },
      { topic: otherTopic, numPartitions: 1, replicationFactor: 1 },
    ],
  });
  documented = await documentedAcls();
  await setAcls(
    documented.filter((acl) => !isCluster(acl)),
    true,
  );
});
after(async () => {
  await superAdmin?.disconnect();
  await broker?.dispose();
  await ca?.dispose();
});

const participantConfig = (
  overrides: Partial<KafkaParticipantConfigInput> = {},
): KafkaParticipantConfigInput => ({
  name: "kafka-acl",
  brokers: [broker.broker],
  clientId: `verdict-acl-${run}`,
  markerTopic,
  markerPartitions: 1,
  transactionalIdPrefix: prefix,
  // One transactional id: each commit fences whatever an earlier failed run left open.
  poolSize: 1,
  attemptTimeoutMs: 10_000,
  connectionTimeoutMs: 3_000,
  tls: { caFile: ca.caFile },
  sasl: { mechanism: "scram-sha-512", username: "verdict", password: passwords.verdict },
  ...overrides,
});

/**
 * Everything the participant does with a branch, on a fresh cluster id (so start writes a
 * layout record); throws at the first step that fails. Returns the start's health warnings.
 */
async function exercise(): Promise<readonly string[]> {
  const clusterId = `acl-${run}-${++n}`;
  const p = createKafkaParticipant(participantConfig());
  const reader = await CommittedReader.open(superKafka, { owner: "acl-test-reader" });
  try {
    await p.start(clusterId);
    await p.fence(); // as the driver does at start
    const branchId = `${clusterId}:x1:1` as BranchId;
    const value = `transfer-${clusterId}`;
    const payload = payloadOf([{ topic: dataTopic, value }]);
    const vote = await p.prepare({ branchId, payload }, prepareCtx());
    assert.equal(vote.vote, "yes", JSON.stringify(vote));
    const evidence = vote.vote === "yes" ? vote.evidence : undefined;
    const tooLarge = payloadOf([
      { topic: dataTopic, value: "x".repeat(2 * dataTopicMessageBytesMax) },
    ]);
    const refused = await p.prepare(
      { branchId: `${clusterId}:x2:1` as BranchId, payload: tooLarge },
      prepareCtx(),
    );
    assert.equal(
      refused.vote === "no" && refused.reason,
      "message-too-large",
      JSON.stringify(refused),
    );
    const { outcome } = await commitWithRetries(p, branchId, payload, { ...phase2(), evidence });
    assert.equal(outcome, "done");
    assert.ok((await reader.readSettled(dataTopic, 0)).values.includes(value), "read_committed");
    // Once the marker partition is settled too (the broker writes commit markers after EndTxn).
    await reader.readSettled(markerTopic, 0);
    const view = await p.inspect(branchId, evidence);
    assert.ok(view.kind === "kafka" && view.holds === "committed", JSON.stringify(view));
    return (await p.health()).warnings;
  } finally {
    await reader.close();
    await p.close();
  }
}

describe("the documented Kafka ACLs", () => {
  test("are enough: start, prepare (yes and no), commit, inspect, read back", async () => {
    const warnings = await exercise();
    assert.ok(
      warnings.some((w) => w.startsWith("could not tell whether the brokers enforce ACLs")),
      warnings.join("; "),
    );
  });

  test("each required operation is needed: without it the run fails", async (t) => {
    for (const acl of documented.filter((a) => !isCluster(a))) {
      await setAcls([acl], false);
      try {
        const reason = await exercise().then(
          () => undefined,
          (e: unknown) => (e instanceof Error ? e.message : String(e)),
        );
        assert.ok(reason !== undefined, `still works without ${describeAcl(acl)}`);
        t.diagnostic(`without ${describeAcl(acl)}: ${reason.slice(0, 240)}`);
      } finally {
        await setAcls([acl], true);
      }
    }
    await exercise(); // and all of them together still work
  });

  test("the optional cluster DESCRIBE_CONFIGS names the authorizer in health", async () => {
    const optional = documented.filter(isCluster);
    assert.equal(optional.length, 1, "one optional cluster line");
    await setAcls(optional, true);
    try {
      const warnings = await exercise();
      assert.ok(
        warnings.some(
          (w) => w.includes("the brokers enforce ACLs (") && w.includes("StandardAuthorizer"),
        ),
        warnings.join("; "),
      );
    } finally {
      await setAcls(optional, false);
    }
  });
});

describe("what the participant's user is refused", () => {
  const authorizationError = /AUTHORIZATION_FAILED|not authorized/i;
  const refused = async (what: string, call: () => Promise<unknown>) => {
    await assert.rejects(
      call(),
      (e: Error & { type?: string; errors?: { type?: string }[] }) => {
        // An admin call on several resources throws one error holding each resource's.
        const types = [e.type, ...(e.errors ?? []).map((inner) => inner.type)].join(" ");
        assert.match(`${types} ${e.message}`, authorizationError, `${what}: ${e.message}`);
        return true;
      },
      what,
    );
  };

  test("other topics, other transactional ids, deleting, configs, ACLs", async () => {
    const kafka = client("verdict");
    const admin = kafka.admin();
    const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
    // kafkajs reports a refused FindCoordinator as "Failed to find group coordinator" and
    // logs the broker's error only at debug level: the refusal is read from there.
    const debug: string[] = [];
    const foreign = client("verdict", {
      logLevel: logLevel.DEBUG,
      logCreator: () => (entry) => {
        debug.push(
          JSON.stringify(entry.log, (_k, v: unknown) => (v instanceof Error ? { ...v } : v)),
        );
      },
    }).producer({
      transactionalId: `other-prefix-0`,
      idempotent: true,
      maxInFlightRequests: 1,
      retry: { retries: 1 },
    });
    const reader = await CommittedReader.open(kafka, { owner: "acl-test-limited" });
    try {
      await admin.connect();
      await producer.connect();
      await refused("writing another topic", () =>
        producer.send({ topic: otherTopic, messages: [{ value: "x" }] }),
      );
      await refused("writing an internal topic", () =>
        producer.send({ topic: "__consumer_offsets", messages: [{ value: "x" }] }),
      );
      await foreign.connect();
      await assert.rejects(foreign.transaction(), "another transactional-id prefix");
      assert.match(debug.join("\n"), /TRANSACTIONAL_ID_AUTHORIZATION_FAILED/);
      // Reading fetches only when the partition holds records: give it one.
      const writer = superKafka.producer({ allowAutoTopicCreation: false });
      await writer.connect();
      await writer.send({ topic: dataTopic, messages: [{ value: "to read" }] });
      await writer.disconnect();
      await refused("reading a data topic", () => reader.readSettled(dataTopic, 0));
      await refused("deleting a topic", () =>
        admin.deleteTopics({ topics: [dataTopic], timeout: 5_000 }),
      );
      await refused("creating a topic", () =>
        admin.createTopics({
          topics: [{ topic: `new-${run}`, numPartitions: 1, replicationFactor: 1 }],
        }),
      );
      await refused("changing the marker topic's configs", () =>
        admin.alterConfigs({
          validateOnly: false,
          resources: [
            {
              type: kafkajs.ConfigResourceTypes.TOPIC,
              name: markerTopic,
              configEntries: [{ name: "message.timestamp.type", value: "CreateTime" }],
            },
          ],
        }),
      );
      await refused("creating ACLs", () =>
        admin.createAcls({
          acl: [{ ...documented[0]!, principal: "User:service" }],
        }),
      );
      const topics = await superAdmin.listTopics();
      assert.ok(topics.includes(dataTopic) && !topics.includes(`new-${run}`));
    } finally {
      await Promise.allSettled([admin.disconnect(), producer.disconnect(), foreign.disconnect()]);
      await reader.close();
    }
  });

  test("a service user with WRITE on its data topic may not write the marker topic", async () => {
    const service: AclEntry = {
      resourceType: AclResourceTypes.TOPIC,
      resourceName: dataTopic,
      resourcePatternType: ResourcePatternTypes.LITERAL,
      principal: "User:service",
      host: "*",
      operation: AclOperationTypes.WRITE,
      permissionType: AclPermissionTypes.ALLOW,
    };
    await setAcls(
      [service, { ...service, resourceName: markerTopic, operation: AclOperationTypes.READ }],
      true,
    );
    const producer = client("service").producer({
      allowAutoTopicCreation: false,
      retry: { retries: 0 },
    });
    try {
      await producer.connect();
      await producer.send({ topic: dataTopic, messages: [{ value: "its own write" }] });
      await refused("a forged marker", () =>
        producer.send({
          topic: markerTopic,
          messages: [{ key: `acl-${run}-1:x1:1`, value: "{}" }],
        }),
      );
    } finally {
      await producer.disconnect();
    }
  });

  test("a wrong SCRAM password stops start: the broker refused the credentials", async () => {
    const wrong = `${passwords.verdict}-wrong`;
    const p = createKafkaParticipant(
      participantConfig({
        sasl: { mechanism: "scram-sha-512", username: "verdict", password: wrong },
      }),
    );
    try {
      await assert.rejects(p.start(`acl-${run}-wrong`), (e: Error & { retryable?: boolean }) => {
        assert.equal(e.name, "KafkaConfigError", e.message);
        assert.equal(e.retryable, false);
        assert.match(e.message, /participant kafka-acl: the broker refused the SASL credentials/);
        assert.ok(!e.message.includes(wrong), "no password in the message");
        return true;
      });
    } finally {
      await p.close();
    }
  });
});
