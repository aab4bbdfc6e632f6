/**
 * Three (or N) Verdict nodes as real processes (the compiled CLI) over one etcd cluster, on
 * the real PostgreSQL, Redis and Kafka: one config per node, the same cluster id, tokens and
 * participants, each node's etcd traffic through its own fault proxies (one per member) so a
 * test can cut one node off from etcd. Ports stay fixed across restarts, so the clients' URL
 * list stays valid; each node's stdout and stderr go to `<dataDir>/node.log`.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { FaultProxy } from "../integration/etcd/fault-proxy.js";
import { freePort } from "../support/free-port.js";
import { dropSchema } from "../support/node.js";
import { awaitListening, cliPath, type ProcessNode } from "../support/process-node.js";
import { services } from "../support/services.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** What a failure message quotes of a node's log. */
const logTailChars = 4_000;
const logCharsMax = 4 * 1024 * 1024;

export interface ClusterNodesOptions {
  readonly size: number;
  readonly etcdEndpoints: readonly string[];
  /** Participants after pg-a and pg-b, as written (the mixed world's Redis and Kafka). */
  readonly extraParticipants: readonly Record<string, unknown>[];
  readonly leaseTtlMs: number;
  readonly logLevel: string;
}

/** One node of the cluster: its process (when running), its etcd link, its log. */
export class ClusterNode {
  process: ProcessNode | undefined;
  private logText = "";
  private readonly logFile: WriteStream;
  private starts = 0;

  constructor(
    readonly id: string,
    readonly url: string,
    readonly dataDir: string,
    readonly configPath: string,
    /** One proxy per etcd member: cut them all and the node is cut off from etcd. */
    readonly etcdLink: readonly FaultProxy[],
  ) {
    this.logFile = createWriteStream(join(dirname(dataDir), `${id}.log`), { flags: "a" });
  }

  get logPath(): string {
    return this.logFile.path.toString();
  }

  running(): boolean {
    return this.process !== undefined && this.process.exitStatus() === undefined;
  }

  async start(failpoints?: string): Promise<ProcessNode> {
    if (this.running()) throw new Error(`node ${this.id} is running`);
    this.starts += 1;
    this.record(`---- start ${this.starts} of ${this.id} failpoints=${failpoints ?? "none"}\n`);
    const env = { ...process.env };
    delete env.VERDICT_FAILPOINTS;
    if (failpoints) env.VERDICT_FAILPOINTS = failpoints;
    const child = spawn(process.execPath, [cliPath, "start", "--config", this.configPath], {
      cwd: root,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.process = await awaitListening(
      child,
      (chunk) => this.record(chunk),
      () => this.logTail(),
    );
    return this.process;
  }

  /** Signals the process; SIGKILL waits until it is gone. */
  async signal(signal: NodeJS.Signals): Promise<void> {
    const p = this.process;
    if (p === undefined || !this.running()) return;
    p.kill(signal);
    if (signal === "SIGKILL") await p.exited;
  }

  cutFromEtcd(): void {
    for (const p of this.etcdLink) p.cut();
  }

  healEtcd(): void {
    for (const p of this.etcdLink) p.heal();
  }

  /** Removes the node's data directory (it must not be running). */
  async wipe(): Promise<void> {
    if (this.running()) throw new Error(`node ${this.id} is running`);
    await rm(this.dataDir, { recursive: true, force: true });
    await mkdir(this.dataDir, { recursive: true });
  }

  readLog(): string {
    return this.logText;
  }

  logTail(): string {
    return this.logText.slice(-logTailChars);
  }

  async close(): Promise<void> {
    if (this.running()) this.process?.kill("SIGCONT");
    await this.signal("SIGKILL");
    for (const p of this.etcdLink) await p.close();
    await new Promise<void>((done) => this.logFile.end(done));
  }

  private record(chunk: Buffer | string): void {
    this.logFile.write(chunk);
    this.logText += chunk.toString();
    if (this.logText.length > logCharsMax) this.logText = this.logText.slice(-logCharsMax / 2);
  }
}

export interface ClusterNodes {
  readonly clusterId: string;
  readonly schema: string;
  readonly clientToken: string;
  readonly adminToken: string;
  readonly nodes: readonly ClusterNode[];
  readonly dir: string;
  node(id: string): ClusterNode;
  /** Kills every node, closes the proxies, drops the schema and removes the directories. */
  destroy(): Promise<void>;
}

/** Writes the configs and proxies; starts no process (`node.start()` does). */
export async function createClusterNodes(o: ClusterNodesOptions): Promise<ClusterNodes> {
  const dir = await mkdtemp(join(tmpdir(), "verdict-cluster-"));
  const run = randomBytes(4).toString("hex");
  const clusterId = `fault-${run}`;
  const schema = `vc_${randomBytes(6).toString("hex")}`;
  const secret = () => randomBytes(18).toString("base64url");
  const clientToken = secret();
  const adminToken = secret();
  const participant = (name: string, connectionString: string) => ({
    name,
    kind: "postgres",
    connectionString,
    schema,
    // The checks end leftover branches by hand as deploy/local's verdict role.
    unsafeSingleRole: true,
  });
  const nodes: ClusterNode[] = [];
  for (let i = 1; i <= o.size; i++) {
    const id = `n${i}`;
    const dataDir = join(dir, id);
    await mkdir(dataDir, { recursive: true });
    const port = await freePort();
    const link: FaultProxy[] = [];
    for (const endpoint of o.etcdEndpoints) {
      link.push(await FaultProxy.start(Number(endpoint.split(":")[1])));
    }
    const config = {
      node: { id, dataDir, host: "127.0.0.1", port },
      tokens: [
        { id: "client-a", role: "client", secret: clientToken },
        { id: "admin", role: "admin", secret: adminToken },
      ],
      participants: [
        participant("pg-a", services.pgUrlA),
        participant("pg-b", services.pgUrlB),
        ...o.extraParticipants,
      ],
      // A transaction's record must fit one etcd request (docs/etcd.md, "Limits").
      limits: { inFlightTransactionsMax: 256, payloadBytesPerTransactionMax: 256 * 1024 },
      protocol: { tickMs: 10, phase2BackoffBaseMs: 20, phase2BackoffMaxMs: 300 },
      log: {
        level: o.logLevel,
        kind: "etcd",
        endpoints: link.map((p) => p.endpoint),
        clusterId,
        leaseTtlMs: o.leaseTtlMs,
        demotionMarginMs: 500,
      },
    };
    const configPath = join(dir, `${id}.json`);
    await writeFile(configPath, JSON.stringify(config, null, 2));
    nodes.push(new ClusterNode(id, `http://127.0.0.1:${port}`, dataDir, configPath, link));
  }
  return {
    clusterId,
    schema,
    clientToken,
    adminToken,
    nodes,
    dir,
    node(id) {
      const found = nodes.find((n) => n.id === id);
      if (found === undefined) throw new Error(`no node ${id}`);
      return found;
    },
    async destroy() {
      for (const n of nodes) await n.close();
      await dropSchema(schema);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
