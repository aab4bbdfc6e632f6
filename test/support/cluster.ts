/**
 * N Verdict nodes as real processes over the real etcd of deploy/local (`log.kind: etcd`), for
 * cluster and fault tests. Every node has its own data directory and log file; they share one
 * PostgreSQL schema (pg-a, pg-b), the tokens, and a cluster id of their own, so tests sharing
 * the etcd cluster never collide. `destroy` kills every process, deletes the cluster's etcd
 * keys, drops the schema and removes the directories.
 *
 *   const cluster = await startCluster({ nodes: 3 });
 *   const { node: leader, term } = await cluster.waitForLeader();
 *   await leader.kill("SIGKILL");
 *   const next = await cluster.waitForLeader({ not: leader.id });
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { connectEtcd, connectionDefaults } from "../../coordinator/log/etcd/client.js";
import { EtcdLayout, prefixEnd } from "../../coordinator/log/etcd/layout.js";
import { dropSchema } from "./node.js";
import {
  createProcessCluster,
  type ProcessCluster,
  type ProcessClusterOptions,
  type ProcessNode,
  type ProcessStartOptions,
} from "./process-node.js";

export const etcdEndpoints = (
  process.env.VERDICT_ETCD_ENDPOINTS ?? "127.0.0.1:52379,127.0.0.1:52389,127.0.0.1:52399"
).split(",");

export interface ClusterOptions extends Omit<ProcessClusterOptions, "nodeId" | "shared" | "log"> {
  /** How many nodes (default 3). */
  readonly nodes?: number;
  /** The cluster id (default a fresh `t-<hex>`). */
  readonly clusterId?: string;
  /** Fields of `log` besides kind, endpoints and clusterId (e.g. `leaseTtlMs`). */
  readonly log?: Record<string, unknown>;
  /** etcd endpoints the nodes use (default deploy/local's three members). */
  readonly endpoints?: readonly string[];
  /** Start the nodes (default true); false: call `start` on each yourself. */
  readonly start?: boolean;
}

/** One node of the cluster: a process that can be killed and started again. */
export class ClusterNode {
  private current: ProcessNode | undefined;

  constructor(
    readonly id: string,
    readonly proc: ProcessCluster,
  ) {}

  async start(opts?: ProcessStartOptions): Promise<ProcessNode> {
    try {
      this.current = await this.proc.start(opts);
    } catch (e) {
      throw new Error(`node ${this.id}: ${e instanceof Error ? e.message : String(e)}`, {
        cause: e,
      });
    }
    return this.current;
  }

  /** The running process's URL (throws if it never started). */
  get url(): string {
    if (this.current === undefined) throw new Error(`node ${this.id} has not started`);
    return this.current.url;
  }

  get process(): ProcessNode | undefined {
    return this.current;
  }

  get running(): boolean {
    return this.current !== undefined && this.current.exitStatus() === undefined;
  }

  /** Sends `signal` (SIGKILL by default) and, unless it is SIGSTOP/SIGCONT, waits for the exit. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const p = this.current;
    if (p === undefined || p.exitStatus() !== undefined) return;
    p.kill(signal);
    if (signal !== "SIGSTOP" && signal !== "SIGCONT") await p.exited;
  }

  logTail(): string {
    return this.proc.logTail();
  }
}

export interface ClusterView {
  readonly leaderId: string | null;
  readonly leaderUrl: string | null;
  readonly term: number;
  readonly members: readonly { id: string; url: string; role: string; leader: boolean }[];
}

export interface Cluster {
  readonly clusterId: string;
  readonly schema: string;
  readonly clientToken: string;
  readonly adminToken: string;
  readonly nodes: readonly ClusterNode[];
  node(id: string): ClusterNode;
  /** URLs of the running nodes. */
  urls(): string[];
  /** GET /admin/v1/cluster from `node` (any running node by default). */
  view(node?: ClusterNode): Promise<ClusterView>;
  /**
   * Waits until a running node leads and serves (its own view names itself), optionally one
   * other than `not`, and returns it with its term.
   */
  waitForLeader(opts?: {
    not?: string;
    timeoutMs?: number;
  }): Promise<{ node: ClusterNode; term: number }>;
  /** Kills every process, deletes the cluster's etcd keys, drops the schema, removes directories. */
  destroy(): Promise<void>;
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const count = opts.nodes ?? 3;
  const clusterId = opts.clusterId ?? `t-${randomBytes(5).toString("hex")}`;
  const endpoints = opts.endpoints ?? etcdEndpoints;
  const shared = {
    schema: `vc_${randomBytes(6).toString("hex")}`,
    clientToken: randomBytes(18).toString("base64url"),
    adminToken: randomBytes(18).toString("base64url"),
  };
  const nodes: ClusterNode[] = [];
  for (let i = 1; i <= count; i++) {
    const id = `n${i}`;
    const proc = await createProcessCluster({
      ...opts,
      // A transaction's record must fit one etcd request (docs/etcd.md, "Limits").
      limits: { payloadBytesPerTransactionMax: 256 * 1024, ...opts.limits },
      nodeId: id,
      shared,
      log: {
        kind: "etcd",
        endpoints,
        clusterId,
        leaseTtlMs: 3000,
        demotionMarginMs: 500,
        ...opts.log,
      },
    });
    nodes.push(new ClusterNode(id, proc));
  }
  const cluster = makeCluster(clusterId, endpoints, shared, nodes);
  if (opts.start !== false) {
    try {
      // One after another (a node's start is CPU-heavy): the first one up wins the election.
      for (const n of nodes) await n.start();
    } catch (e) {
      await cluster.destroy();
      throw e;
    }
  }
  return cluster;
}

function makeCluster(
  clusterId: string,
  endpoints: readonly string[],
  shared: { schema: string; clientToken: string; adminToken: string },
  nodes: ClusterNode[],
): Cluster {
  const view = async (node?: ClusterNode): Promise<ClusterView> => {
    const n = node ?? nodes.find((x) => x.running);
    if (n === undefined) throw new Error("no node is running");
    const res = await fetch(`${n.url}/admin/v1/cluster`, {
      headers: { authorization: `Bearer ${shared.adminToken}` },
      signal: AbortSignal.timeout(5_000),
    });
    if (res.status !== 200) throw new Error(`cluster view: ${res.status} ${await res.text()}`);
    return (await res.json()) as ClusterView;
  };
  return {
    clusterId,
    ...shared,
    nodes,
    node(id) {
      const n = nodes.find((x) => x.id === id);
      if (n === undefined) throw new Error(`no node ${id}`);
      return n;
    },
    urls: () => nodes.filter((n) => n.running).map((n) => n.url),
    view,
    async waitForLeader({ not, timeoutMs = 20_000 } = {}) {
      const until = Date.now() + timeoutMs;
      let last = "no answer";
      while (Date.now() < until) {
        for (const n of nodes) {
          if (!n.running || n.id === not) continue;
          try {
            const v = await view(n);
            last = JSON.stringify({ node: n.id, leader: v.leaderId, term: v.term });
            // Registered as leader once its takeover finished and it serves.
            const serving = v.members.some((m) => m.id === n.id && m.role === "leader");
            if (v.leaderId === n.id && v.term > 0 && serving) return { node: n, term: v.term };
          } catch (e) {
            last = String(e);
          }
        }
        await sleep(100);
      }
      throw new Error(
        `no leader${not ? ` other than ${not}` : ""} within ${timeoutMs} ms: ${last}`,
      );
    },
    async destroy() {
      await Promise.all(nodes.map((n) => n.proc.kill()));
      await Promise.all(nodes.map((n) => n.proc.destroy()));
      await dropSchema(shared.schema);
      const client = connectEtcd({ endpoints, ...connectionDefaults });
      try {
        const layout = new EtcdLayout(clusterId);
        const prefix = Buffer.from(layout.prefix);
        await client.kv.deleteRange({ key: prefix, range_end: prefixEnd(prefix) });
      } finally {
        client.close();
      }
    },
  };
}
