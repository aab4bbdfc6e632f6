/**
 * Everything one cluster fault test runs on: a private 3-member etcd (private-etcd.ts), the
 * mixed world of the soak (both bank databases, a Redis namespace, fresh Kafka topics), and
 * three Verdict processes over them (cluster-nodes.ts). It knows who leads from etcd itself
 * (the election key: its owner and its create revision, the term) and heals every fault it
 * was asked to make before the checks run.
 */
import type { Etcd3 } from "etcd3";
import { setTimeout as sleep } from "node:timers/promises";
import { connectEtcd, connectionDefaults } from "../../coordinator/log/etcd/client.js";
import { EtcdLayout } from "../../coordinator/log/etcd/layout.js";
import { createMixedWorld, participantNames, type MixedWorld } from "../crash/mixed-bank.js";
import { createClusterNodes, type ClusterNode, type ClusterNodes } from "./cluster-nodes.js";
import { PrivateEtcd } from "./private-etcd.js";

const pollMs = 100;

export interface FaultClusterOptions {
  readonly size?: number;
  /** The leader's lease; the schema's minimum is 2 s. */
  readonly leaseTtlMs?: number;
  readonly accounts?: number;
  readonly logLevel?: string;
}

export interface LeaderNow {
  readonly nodeId: string;
  readonly term: number;
}

export class FaultCluster {
  private constructor(
    readonly etcd: PrivateEtcd,
    readonly world: MixedWorld,
    readonly nodes: ClusterNodes,
    /** Straight to the members, never through a node's proxies. */
    readonly etcdAdmin: Etcd3,
    readonly leaseTtlMs: number,
  ) {}

  static async create(o: FaultClusterOptions = {}): Promise<FaultCluster> {
    const leaseTtlMs = o.leaseTtlMs ?? 3_000;
    const etcd = await PrivateEtcd.start();
    let world: MixedWorld | undefined;
    try {
      world = await createMixedWorld(o.accounts ?? 100);
      const nodes = await createClusterNodes({
        size: o.size ?? 3,
        etcdEndpoints: etcd.endpoints,
        extraParticipants: world.participants.map((p) =>
          p.name === participantNames.kafka ? { ...p, poolSize: 16 } : p,
        ),
        leaseTtlMs,
        logLevel: o.logLevel ?? "info",
      });
      const admin = connectEtcd({ endpoints: etcd.endpoints, ...connectionDefaults });
      return new FaultCluster(etcd, world, nodes, admin, leaseTtlMs);
    } catch (err) {
      await world?.close(undefined);
      await etcd.close();
      throw err;
    }
  }

  get urls(): string[] {
    return this.nodes.nodes.map((n) => n.url);
  }

  /** Starts every node that is not running (`failpoints` for all of them, if given). */
  async startAll(failpoints?: string): Promise<void> {
    for (const n of this.nodes.nodes) if (!n.running()) await n.start(failpoints);
  }

  /** The election key's owner and term right now (read from etcd, linearizably). */
  async leader(): Promise<LeaderNow | undefined> {
    const layout = new EtcdLayout(this.nodes.clusterId);
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.etcdAdmin.kv.range({ key: layout.leader });
        const kv = res.kvs[0];
        if (kv === undefined) return undefined;
        const value = JSON.parse(kv.value.toString()) as { nodeId: string };
        return { nodeId: value.nodeId, term: Number(kv.create_revision) };
      } catch (err) {
        // Two members down: no quorum, no answer; the caller's bound decides.
        if (attempt >= 3) throw err;
        await sleep(pollMs);
      }
    }
  }

  /** Waits for a leader that satisfies `ok` (by default any), up to `timeoutMs`. */
  async awaitLeader(
    timeoutMs: number,
    ok: (l: LeaderNow) => boolean = () => true,
  ): Promise<LeaderNow> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const l = await this.leader().catch(() => undefined);
      if (l !== undefined && ok(l)) return l;
      if (Date.now() > deadline) {
        throw new Error(`no suitable leader within ${timeoutMs} ms (now ${JSON.stringify(l)})`);
      }
      await sleep(pollMs);
    }
  }

  async leaderNode(timeoutMs = 15_000): Promise<{ node: ClusterNode; term: number }> {
    const l = await this.awaitLeader(timeoutMs);
    return { node: this.nodes.node(l.nodeId), term: l.term };
  }

  /** Undoes every fault: etcd members back, links healed, paused nodes resumed, dead ones restarted. */
  async healAll(): Promise<void> {
    for (let m = 1; m <= 3; m++) {
      await this.etcd.signal(m, "SIGCONT");
      await this.etcd.restart(m);
    }
    for (const n of this.nodes.nodes) {
      n.healEtcd();
      if (n.running()) n.process?.kill("SIGCONT");
    }
    await this.startAll();
  }

  async destroy(): Promise<void> {
    try {
      await this.nodes.destroy();
    } finally {
      this.etcdAdmin.close();
      await this.world.close(this.nodes.clusterId).catch(() => undefined);
      await this.etcd.close();
    }
  }
}
