/**
 * Shared set-up for the etcd decision-log tests: the 3-member cluster of deploy/local (started
 * by `deploy/local/local.sh up etcd` when it is not up), a unique cluster id per test (its keys
 * deleted afterwards), nodes made of a client and a Leadership, and control of etcd members.
 */
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Etcd3 } from "etcd3";
import { connectEtcd, connectionDefaults } from "../../../coordinator/log/etcd/client.js";
import {
  EtcdDecisionLog,
  type EtcdDecisionLogOptions,
} from "../../../coordinator/log/etcd/etcd-decision-log.js";
import { EtcdUnavailableError } from "../../../coordinator/log/etcd/errors.js";
import { EtcdLayout, prefixEnd } from "../../../coordinator/log/etcd/layout.js";
import {
  Leadership,
  leadershipDefaults,
  type LeadershipOptions,
} from "../../../coordinator/log/etcd/leadership.js";

const root = path.resolve(import.meta.dirname, "../../..");
const localDir = process.env.VERDICT_LOCAL_DIR ?? path.join(root, ".local");

export const endpoints = (
  process.env.VERDICT_ETCD_ENDPOINTS ?? "127.0.0.1:52379,127.0.0.1:52389,127.0.0.1:52399"
).split(",");

export function connect(hosts: readonly string[] = endpoints): Etcd3 {
  return connectEtcd({ endpoints: hosts, ...connectionDefaults });
}

/** Starts the local cluster unless every member answers. */
export async function ensureEtcd(): Promise<void> {
  try {
    for (const endpoint of endpoints) {
      const one = connect([endpoint]);
      try {
        await one.maintenance.status();
      } finally {
        one.close();
      }
    }
  } catch {
    restartMembers();
  }
}

export interface Node {
  readonly client: Etcd3;
  readonly leadership: Leadership;
}

export class TestCluster {
  readonly layout = new EtcdLayout(`test-${randomUUID().slice(0, 8)}`);
  readonly admin: Etcd3;
  private readonly clients: Etcd3[];
  private readonly leaderships: Leadership[] = [];

  constructor(private readonly hosts: readonly string[] = endpoints) {
    this.admin = connect(hosts);
    this.clients = [this.admin];
  }

  node(nodeId: string, options: Partial<LeadershipOptions> = {}, hosts = this.hosts): Node {
    const client = connect(hosts);
    this.clients.push(client);
    const leadership = new Leadership({
      client,
      layout: this.layout,
      nodeId,
      url: `http://${nodeId}.test`,
      ...leadershipDefaults,
      ...options,
    });
    this.leaderships.push(leadership);
    return { client, leadership };
  }

  /** Campaigns until etcd answers (a member may be down): the term, or undefined. */
  async campaign(node: Node): Promise<number | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await node.leadership.campaign();
      } catch (err) {
        if (!(err instanceof EtcdUnavailableError) || attempt >= 20) throw err;
        await sleep(250);
      }
    }
  }

  /** Opens a log for the node's current term and replays it (the takeover). */
  async openLog(
    node: Node,
    options: Partial<EtcdDecisionLogOptions<string>> = {},
  ): Promise<EtcdDecisionLog<string>> {
    const log = await EtcdDecisionLog.open<string>({
      client: node.client,
      layout: this.layout,
      leadership: node.leadership,
      replyBytesMax: connectionDefaults.replyBytesMax,
      ...options,
    });
    await log.replay();
    return log;
  }

  /** What a lease expiry does to a paused leader, which does not know yet. */
  async deleteLeaderKey(): Promise<void> {
    await this.admin.delete().key(this.layout.leader).exec();
  }

  async get(key: Buffer) {
    const res = await this.admin.kv.range({ key });
    return res.kvs[0];
  }

  async logKeys(): Promise<number[]> {
    const res = await this.admin.kv.range({
      key: this.layout.logPrefix,
      range_end: prefixEnd(this.layout.logPrefix),
      keys_only: true,
    });
    return res.kvs.map((kv) => this.layout.indexOfLogKey(kv.key));
  }

  async close(): Promise<void> {
    for (const l of this.leaderships) l.close();
    const prefix = Buffer.from(this.layout.prefix);
    await this.admin.kv.deleteRange({ key: prefix, range_end: prefixEnd(prefix) });
    for (const c of this.clients) c.close();
  }
}

/** The member number (1..3) of an endpoint, by its place in `endpoints`. */
export function memberOf(endpoint: string): number {
  return endpoints.indexOf(endpoint) + 1;
}

/** The endpoint of the member that is etcd's Raft leader right now. */
export async function etcdLeaderEndpoint(): Promise<string> {
  for (const endpoint of endpoints) {
    const one = connect([endpoint]);
    try {
      const status = await one.maintenance.status();
      if (status.leader === status.header.member_id) return endpoint;
    } catch {
      // a member down: ask the next
    } finally {
      one.close();
    }
  }
  throw new Error("no etcd member says it leads");
}

export function killMember(member: number): void {
  const pid = Number(readFileSync(path.join(localDir, "etcd", `member-${member}.pid`), "utf8"));
  process.kill(pid, "SIGKILL");
}

export function restartMembers(): void {
  execFileSync(path.join(root, "deploy/local/local.sh"), ["up", "etcd"], { stdio: "ignore" });
}

/** The etcd binary deploy/local built (deploy/local/etcd.sh caches it per machine). */
export function etcdBinary(): string {
  const version = process.env.VERDICT_ETCD_VERSION ?? "3.6.16";
  const cache =
    process.env.VERDICT_ETCD_CACHE ??
    path.join(
      process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"),
      "verdict",
      `etcd-v${version}`,
    );
  return path.join(cache, "bin", "etcd");
}
