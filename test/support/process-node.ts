/**
 * Runs the coordinator as a real child process (the compiled CLI, `node
 * dist/coordinator/cli/main.js start --config FILE`), so that a test can SIGKILL it — or let
 * an armed failpoint do so — and start it again on the same data directory and PostgreSQL
 * schema: the same cluster, restarted.
 *
 * A `ProcessCluster` owns the data directory, the config file and the schema; each `start`
 * spawns one process of it, with its stdout and stderr appended to `<dataDir>/node.log`.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dropSchema } from "./node.js";
import { repoRoot } from "./repo-root.js";
import { services } from "./services.js";

const root = repoRoot;
/** VERDICT_TEST_CLI runs another build (e.g. a deliberately broken one, to see the tests fail). */
export const cliPath = process.env.VERDICT_TEST_CLI ?? join(root, "dist/coordinator/cli/main.js");
const startTimeoutMs = 20_000;
const buildTimeoutMs = 180_000;
/** What a failure message quotes of the node's log. */
const logTailChars = 4_000;
/** Of the node log kept in memory (the file has it all). */
const logCharsMax = 8 * 1024 * 1024;

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ProcessNode {
  readonly url: string;
  readonly pid: number;
  /** Resolves once the process has exited, however it ended. */
  readonly exited: Promise<ExitStatus>;
  /** The exit status if it has exited already. */
  exitStatus(): ExitStatus | undefined;
  kill(signal?: NodeJS.Signals): void;
}

export interface ProcessStartOptions {
  /** `VERDICT_FAILPOINTS` of the process, e.g. `after-prepare=crash@5`; none if absent. */
  readonly failpoints?: string;
}

export interface ProcessCluster {
  readonly dataDir: string;
  /** PostgreSQL schema of Verdict's tables in both databases (one cluster per schema). */
  readonly schema: string;
  readonly configPath: string;
  readonly logPath: string;
  readonly clientToken: string;
  readonly adminToken: string;
  start(opts?: ProcessStartOptions): Promise<ProcessNode>;
  /** The cluster id the first start created (`<dataDir>/cluster-id`). */
  clusterId(): Promise<string>;
  /** Everything its processes wrote so far. */
  readLog(): string;
  /** The last characters of the node log, for failure messages. */
  logTail(): string;
  /** SIGKILLs its running process, if any, and waits for it to exit. */
  kill(): Promise<void>;
  /** Kills its running process, drops its schema and removes its data directory. */
  destroy(): Promise<void>;
}

export interface ProcessClusterOptions {
  readonly protocol?: Record<string, number | boolean>;
  readonly limits?: Record<string, number>;
  /** Extra fields of both PostgreSQL participants (timeouts, pool size). */
  readonly participant?: Record<string, number | boolean>;
  /**
   * Participants configured after pg-a and pg-b, as written (e.g. `{ name, kind: "redis",
   * url, namespace }`): each test picks its own namespace, topics and prefixes.
   */
  readonly extraParticipants?: readonly Record<string, unknown>[];
  readonly logLevel?: string;
  /** `node.id` (default `crash-1`). */
  readonly nodeId?: string;
  /** Share another cluster's schema and tokens (several nodes of one etcd cluster); not dropped. */
  readonly shared?: {
    readonly schema: string;
    readonly clientToken: string;
    readonly adminToken: string;
  };
  /** Fields of `log` besides its level, e.g. `{ kind: "etcd", endpoints, clusterId }`. */
  readonly log?: Record<string, unknown>;
  /** The `metrics` section (e.g. `{ cacheMs: 0 }` for a bench's before-and-after scrapes). */
  readonly metrics?: Record<string, unknown>;
  /** More fields of `node`, e.g. `{ tls: { certFile, keyFile } }`. */
  readonly node?: Record<string, unknown>;
  /** The `cluster` block, e.g. `{ forwardSecretFile }`. */
  readonly cluster?: Record<string, unknown>;
}

const running = new Set<ChildProcess>();

/** Builds dist/ if the compiled CLI is missing (the test command normally built it). */
export function ensureBuilt(): void {
  if (existsSync(cliPath)) return;
  const r = spawnSync("npm", ["run", "-s", "build"], {
    cwd: root,
    stdio: "inherit",
    timeout: buildTimeoutMs,
  });
  if (r.status !== 0 || !existsSync(cliPath)) {
    throw new Error(`npm run build failed (status ${r.status}); ${cliPath} is missing`);
  }
}

/** SIGKILLs every process this module started that is still running, and waits for them. */
export async function killLeftovers(): Promise<void> {
  const waits = [...running].map(
    (child) =>
      new Promise<void>((done) => {
        child.once("close", () => done());
        child.kill("SIGKILL");
      }),
  );
  await Promise.all(waits);
}

export async function createProcessCluster(
  opts: ProcessClusterOptions = {},
): Promise<ProcessCluster> {
  const dataDir = await mkdtemp(join(tmpdir(), "verdict-proc-"));
  const schema = opts.shared?.schema ?? `vc_${randomBytes(6).toString("hex")}`;
  const secret = () => randomBytes(18).toString("base64url");
  const clientToken = opts.shared?.clientToken ?? secret();
  const adminToken = opts.shared?.adminToken ?? secret();
  const configPath = join(dataDir, "verdict.json");
  const logPath = join(dataDir, "node.log");
  const participant = (name: string, connectionString: string) => ({
    name,
    kind: "postgres",
    connectionString,
    schema,
    // Crash tests end branches by hand as deploy/local's verdict role, as a DBA would.
    unsafeSingleRole: true,
    ...opts.participant,
  });
  const config = {
    node: { id: opts.nodeId ?? "crash-1", dataDir, host: "127.0.0.1", port: 0, ...opts.node },
    ...(opts.cluster === undefined ? {} : { cluster: opts.cluster }),
    tokens: [
      { id: "client-a", role: "client", secret: clientToken },
      { id: "admin", role: "admin", secret: adminToken },
    ],
    participants: [
      participant("pg-a", services.pgUrlA),
      participant("pg-b", services.pgUrlB),
      ...(opts.extraParticipants ?? []),
    ],
    limits: { inFlightTransactionsMax: 256, ...opts.limits },
    protocol: { tickMs: 10, phase2BackoffBaseMs: 20, phase2BackoffMaxMs: 300, ...opts.protocol },
    log: { level: opts.logLevel ?? "warn", ...opts.log },
    ...(opts.metrics === undefined ? {} : { metrics: opts.metrics }),
  };
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const log = createWriteStream(logPath, { flags: "a" });
  let current: ProcessNode | undefined;
  let starts = 0;

  // Also kept in memory: the file stream may not have flushed when a test reads it.
  let logText = "";
  const record = (chunk: Buffer | string) => {
    log.write(chunk);
    logText += chunk.toString();
    if (logText.length > logCharsMax) logText = logText.slice(-logCharsMax / 2);
  };
  const readLog = () => logText;
  const logTail = () => logText.slice(-logTailChars);
  const kill = async () => {
    if (current && !current.exitStatus()) {
      current.kill("SIGKILL");
      await current.exited;
    }
  };

  return {
    dataDir,
    schema,
    configPath,
    logPath,
    clientToken,
    adminToken,
    readLog,
    logTail,
    kill,
    async start(startOpts = {}) {
      if (current && !current.exitStatus()) throw new Error("the cluster's node is still running");
      starts += 1;
      record(`---- start ${starts} failpoints=${startOpts.failpoints ?? "none"}\n`);
      const env = { ...process.env };
      delete env.VERDICT_FAILPOINTS;
      if (startOpts.failpoints) env.VERDICT_FAILPOINTS = startOpts.failpoints;
      const child = spawn(process.execPath, [cliPath, "start", "--config", configPath], {
        cwd: root,
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      running.add(child);
      current = await awaitListening(child, record, logTail);
      return current;
    },
    async clusterId() {
      return (await readFile(join(dataDir, "cluster-id"), "utf8")).trim();
    },
    async destroy() {
      await kill();
      await new Promise<void>((done) => log.end(done));
      if (opts.shared === undefined) await dropSchema(schema);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Resolves with the node once it prints its URL; rejects (log quoted) if it exits first. */
export function awaitListening(
  child: ChildProcess,
  record: (chunk: Buffer) => void,
  logTail: () => string,
): Promise<ProcessNode> {
  let status: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((done) => {
    // `close`, not `exit`: by then all of its output has been read.
    child.once("close", (code, signal) => {
      running.delete(child);
      status = { code, signal };
      done(status);
    });
  });
  const node = (url: string): ProcessNode => ({
    url,
    pid: child.pid ?? -1,
    exited,
    exitStatus: () => status,
    kill(signal = "SIGKILL") {
      if (!status) child.kill(signal);
    },
  });
  return new Promise<ProcessNode>((resolveNode, reject) => {
    let pending = "";
    let url: string | undefined;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the node did not listen within ${startTimeoutMs} ms; log:\n${logTail()}`));
    }, startTimeoutMs);
    child.stderr?.on("data", record);
    child.stdout?.on("data", (chunk: Buffer) => {
      record(chunk);
      if (url !== undefined) return;
      pending += chunk.toString("utf8");
      const m = /listening on (https?:\/\/\S+)/.exec(pending);
      if (m?.[1]) {
        url = m[1];
        pending = "";
        clearTimeout(timer);
        resolveNode(node(url));
      } else if (pending.length > 64 * 1024) {
        pending = pending.slice(-1024); // only the line being written matters
      }
    });
    void exited.then((s) => {
      if (url !== undefined) return;
      clearTimeout(timer);
      reject(
        new Error(`the node exited (${describeExit(s)}) before listening; log:\n${logTail()}`),
      );
    });
  });
}

export function describeExit(s: ExitStatus): string {
  return s.signal ? `signal ${s.signal}` : `code ${s.code}`;
}
