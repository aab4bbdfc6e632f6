/**
 * A throwaway Kafka broker (KRaft, broker and controller in one JVM) on free loopback ports
 * with its own data directory, for tests that stop a broker: the shared broker of deploy/local
 * is never stopped. It reuses the jars deploy/local/kafka.sh fetched (`.local/kafka/lib`) and
 * its log4j2 configuration, and mirrors its single-node settings (transactions usable on one
 * node, no automatic topic creation). A JVM broker takes seconds to start: start one per file.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { freePort } from "./free-port.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const localDir = process.env.VERDICT_LOCAL_DIR ?? path.join(root, ".local");
const libDir = path.join(localDir, "kafka", "lib");
const log4jConfig = path.join(root, "deploy/local/kafka/log4j2.properties");

const formatTimeoutMs = 60_000;
const readyTimeoutMs = 90_000;
const exitWaitMs = 10_000;
const pollMs = 200;
/** Of the broker log quoted in a failure message. */
const logTailChars = 3_000;

export interface ThrowawayKafka {
  /** `127.0.0.1:<port>`: the client listener (never the controller's). */
  readonly broker: string;
  readonly port: number;
  readonly dir: string;
  /** SIGKILL, like a crash; the data directory stays. */
  kill(): Promise<void>;
  /** Starts again on the same ports and data directory; resolves once it serves clients. */
  restart(): Promise<void>;
  /** Kills the broker and removes its directory. */
  dispose(): Promise<void>;
}

/**
 * PEM files of a broker that serves clients over TLS only: its client listener speaks SSL
 * (the broker also talks to itself over it), its certificate and key are `certFile` and
 * `keyFile` (an unencrypted PKCS#8 key), and `caFile` checks client certificates when
 * `clientAuth` is `required`. With `saslPlainUsers` the listener is SASL_SSL: clients also log
 * in with SASL/PLAIN as one of these users (name → password; the first is the broker's own).
 */
export interface ThrowawayKafkaTls {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientAuth: "none" | "required";
  readonly saslPlainUsers?: Readonly<Record<string, string>>;
  /**
   * SCRAM-SHA-512 credentials (name → password) stored when the storage is formatted
   * (`kafka-storage format --add-scram`); the listener then takes SCRAM-SHA-512 next to PLAIN
   * (the broker itself still logs in with PLAIN). Needs `saslPlainUsers`.
   */
  readonly scramSha512Users?: Readonly<Record<string, string>>;
  /**
   * Turns on KRaft's StandardAuthorizer with `allow.everyone.if.no.acl.found=false`: these
   * users are super users (so is ANONYMOUS, the controller listener's plaintext principal,
   * which only the broker itself uses); everyone else may do only what an ACL allows.
   */
  readonly superUsers?: readonly string[];
}

export async function startThrowawayKafka(tls?: ThrowawayKafkaTls): Promise<ThrowawayKafka> {
  if (!existsSync(libDir)) {
    throw new Error(`no Kafka jars in ${libDir}: run deploy/local/local.sh up kafka once`);
  }
  const port = await freePort();
  const controllerPort = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), "verdict-kafka-test-"));
  const configPath = path.join(dir, "server.properties");
  const logPath = path.join(dir, "kafka.log");
  let config = brokerConfig(port, controllerPort, path.join(dir, "data"));
  if (tls !== undefined) {
    // Kafka's PEM key store is one file: the private key, then the certificate chain.
    const keyStore = path.join(dir, "broker.pem");
    await writeFile(
      keyStore,
      readFileSync(tls.keyFile, "utf8") + readFileSync(tls.certFile, "utf8"),
    );
    const protocol = tls.saslPlainUsers === undefined ? "SSL" : "SASL_SSL";
    config =
      config
        .replaceAll("PLAINTEXT://", `${protocol}://`)
        .replace("inter.broker.listener.name=PLAINTEXT", `inter.broker.listener.name=${protocol}`)
        .replace("PLAINTEXT:PLAINTEXT", `${protocol}:${protocol}`) + sslConfig(tls, keyStore);
  }
  await writeFile(configPath, config);
  const jvm = [
    "-Xmx384m",
    "-Xms128m",
    `-Dlog4j2.configurationFile=${log4jConfig}`,
    "-cp",
    `${libDir}/*`,
  ];
  // A KRaft cluster id is 16 random bytes in unpadded base64url (what `random-uuid` prints).
  const clusterId = randomBytes(16).toString("base64url");
  await runToEnd(
    "java",
    [
      ...jvm,
      "kafka.tools.StorageTool",
      "format",
      // One argument: an id may start with "-", which the tool would take for an option.
      `--cluster-id=${clusterId}`,
      "--config",
      configPath,
      "--standalone",
      ...scramArgs(tls?.scramSha512Users),
    ],
    path.join(dir, "format.log"),
    formatTimeoutMs,
  );

  let child: ChildProcess | undefined;
  const launch = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      throw new Error("assertion: the throwaway broker is still running");
    }
    const out = createWriteStream(logPath, { flags: "a" });
    const started = spawn("java", [...jvm, "kafka.Kafka", configPath], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    started.stdout?.pipe(out);
    started.stderr?.pipe(out);
    child = started;
    await waitServing(started, port, logPath);
  };
  const kill = async () => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGKILL");
    const timeout = new AbortController();
    await Promise.race([
      exited,
      sleep(exitWaitMs, undefined, { signal: timeout.signal }).catch(() => undefined),
    ]);
    timeout.abort(); // a pending timer would keep the test process alive
  };
  try {
    await launch();
  } catch (err) {
    await kill();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    broker: `127.0.0.1:${port}`,
    port,
    dir,
    kill,
    restart: launch,
    async dispose() {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** deploy/local/kafka.sh's single-node settings, smaller still (one test file uses it). */
function brokerConfig(port: number, controllerPort: number, dataDir: string): string {
  return `process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=${dataDir}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
default.replication.factor=1
min.insync.replicas=1
num.partitions=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.network.threads=1
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
num.replica.fetchers=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
log.segment.bytes=8388608
`;
}

function sslConfig(tls: ThrowawayKafkaTls, keyStore: string): string {
  return `ssl.keystore.type=PEM
ssl.keystore.location=${keyStore}
ssl.truststore.type=PEM
ssl.truststore.location=${tls.caFile}
ssl.client.auth=${tls.clientAuth}
${tls.saslPlainUsers === undefined ? "" : saslConfig(tls)}${
    tls.superUsers === undefined ? "" : authorizerConfig(tls.superUsers)
  }`;
}

function authorizerConfig(superUsers: readonly string[]): string {
  const users = [...superUsers, "ANONYMOUS"].map((u) => `User:${u}`);
  return `authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=${users.join(";")}
`;
}

/** `--add-scram` arguments of the storage tool: one per user. */
function scramArgs(users: Readonly<Record<string, string>> | undefined): string[] {
  return Object.entries(users ?? {}).flatMap(([name, password]) => [
    "--add-scram",
    `SCRAM-SHA-512=[name=${name},password=${password}]`,
  ]);
}

function saslConfig(tls: ThrowawayKafkaTls): string {
  const [self, password] = Object.entries(tls.saslPlainUsers ?? {})[0] ?? [];
  if (self === undefined) throw new Error("assertion: saslPlainUsers names no user");
  const accounts = Object.entries(tls.saslPlainUsers ?? {}).map(([u, p]) => `user_${u}="${p}"`);
  const scram = tls.scramSha512Users !== undefined;
  // A SASL_SSL listener ignores the broker-wide ssl.client.auth: it takes its own.
  return `listener.name.sasl_ssl.ssl.client.auth=${tls.clientAuth}
sasl.enabled.mechanisms=PLAIN${scram ? ",SCRAM-SHA-512" : ""}
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="${self}" password="${password}" ${accounts.join(" ")};
${scram ? "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;\n" : ""}`;
}

/** Runs a command to completion (output to `logPath`); throws on a failure or after `timeoutMs`. */
async function runToEnd(
  command: string,
  args: readonly string[],
  logPath: string,
  timeoutMs: number,
): Promise<void> {
  const out = createWriteStream(logPath);
  const child = spawn(command, [...args], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once("close", (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  if (code !== 0) {
    throw new Error(
      `${command} ${args.slice(-6).join(" ")} failed (${signal ?? `code ${code}`}); ` +
        `log:\n${tail(logPath)}`,
    );
  }
}

/**
 * Until the broker logged "Kafka Server started" (it is unfenced and serves clients) and its
 * client port accepts connections; bounded in time. On a restart the log holds the previous
 * run's line too, so the count of such lines must grow.
 */
async function waitServing(child: ChildProcess, port: number, logPath: string): Promise<void> {
  const startedBefore = countStarted(logPath);
  const until = Date.now() + readyTimeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the throwaway Kafka broker exited while starting; log:\n${tail(logPath)}`);
    }
    if (countStarted(logPath) > startedBefore && (await portOpen(port))) return;
    await sleep(pollMs);
  }
  throw new Error(
    `the throwaway Kafka broker did not serve within ${readyTimeoutMs} ms; log:\n${tail(logPath)}`,
  );
}

function countStarted(logPath: string): number {
  if (!existsSync(logPath)) return 0;
  return readFileSync(logPath, "utf8").split("Kafka Server started").length - 1;
}

function tail(logPath: string): string {
  return existsSync(logPath) ? readFileSync(logPath, "utf8").slice(-logTailChars) : "(no log)";
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}
