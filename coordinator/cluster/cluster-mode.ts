/**
 * A node with `log.kind: etcd` (docs/etcd.md, "Running a cluster"): the etcd connection, the
 * cluster runner (membership, election, takeover, demotion), the routing hook, and the
 * operator's view. The routing hook is installed before the server listens (Fastify takes no
 * hook after); the runner starts once the node's URL is known.
 */
import type { Etcd3 } from "etcd3";
import type { Logger } from "pino";
import type { ClusterResponse, HandoverResponse } from "../api/contract/schemas.js";
import { errorText } from "../driver/driver.js";
import { NotLeaderError } from "../log/errors.js";
import type { Config } from "../config/schema.js";
import type { ClusterId, Term, Xid } from "../core/ids.js";
import type { LogRecord } from "../core/records.js";
import { connectEtcd, connectionDefaults, type EtcdSecurity } from "../log/etcd/client.js";
import type { EtcdDecisionLog } from "../log/etcd/etcd-decision-log.js";
import { EtcdLayout } from "../log/etcd/layout.js";
import { listNodes } from "../log/etcd/node-registry.js";
import { ClusterRunner, type TakeoverSteps, type TermWork } from "./runner.js";
import { installRouting, type RoutingHooks } from "./routing.js";
import type { TlsFiles } from "../api/tls.js";
import { Forwarder } from "./forward.js";
import { etcdHealth } from "./etcd-health.js";
import { explainEtcdStartError, readEtcdSecurity } from "./etcd-security.js";

/** How long a handover waits for the appends in flight before it resigns anyway. */
export const HANDOVER_WAIT_MS = 5_000;

export type HandoverResult =
  | { ok: true; answer: HandoverResponse }
  | { ok: false; code: "invalid-state" | "not-leader" | "unavailable"; message: string };

export interface ClusterModeOptions {
  readonly config: Config;
  readonly clusterId: ClusterId;
  readonly logger: Logger;
  /** Adds `onRequest` and `preParsing` hooks to the node's server (before it listens). */
  readonly hooks: RoutingHooks;
  /** The node's `node.tls` files: the CA checks the leader, the certificate is shown to it. */
  readonly tls?: TlsFiles;
  /** The content of cluster.forwardSecretFile. */
  readonly forwardSecret?: Buffer;
  lead(term: Term, log: EtcdDecisionLog<LogRecord>): Promise<TermWork>;
  knows(xid: Xid): boolean;
  /** `RoutingNode.mayHaveForgotten`, from the serving engine's table. */
  mayHaveForgotten(beganAtMs: number): boolean;
  appliedIndex(): number;
  /** Counts each etcd request the node's connection sends (client.ts). */
  onEtcdRequest?(method: string): void;
  /** This node took over a term (the steps' times, for the failover breakdown). */
  onTakeover?(steps: TakeoverSteps): void;
}

export class ClusterMode {
  private readonly client: Etcd3;
  /** One client per member for the leader lease's renewals (docs/etcd.md, "Leadership"). */
  private readonly keepaliveClients: readonly Etcd3[];
  private readonly layout: EtcdLayout;
  private readonly security: EtcdSecurity;
  private runner: ClusterRunner | undefined;
  private readonly forwarder: Forwarder;

  constructor(private readonly o: ClusterModeOptions) {
    const log = o.config.log;
    this.security = readEtcdSecurity(log);
    const connection = {
      endpoints: log.endpoints ?? [],
      requestTimeoutMs: log.requestTimeoutMs,
      replyBytesMax: connectionDefaults.replyBytesMax,
      security: this.security,
      onRequest: (method: string) => o.onEtcdRequest?.(method),
    };
    this.client = connectEtcd(connection);
    this.keepaliveClients = connection.endpoints.map((e) =>
      connectEtcd({ ...connection, endpoints: [e] }),
    );
    this.layout = new EtcdLayout(o.clusterId);
    const secret = o.forwardSecret;
    this.forwarder = new Forwarder(
      {
        ...(secret === undefined ? {} : { secret }),
        bodyBytesMax: o.config.limits.bodyBytesMax,
        nowMs: () => Date.now(),
      },
      o.tls,
    );
    installRouting(o.hooks, {
      nodeId: o.config.node.id,
      term: () => this.runner?.term,
      leader: () => this.runner?.leader,
      confirmLeadership: () =>
        this.runner?.confirmLeadership() ?? Promise.reject(new Error("not started")),
      knows: (xid) => o.knows(xid),
      mayHaveForgotten: (beganAtMs) => o.mayHaveForgotten(beganAtMs),
      nowMs: () => Date.now(),
      forwarder: this.forwarder,
      ...(secret === undefined
        ? {}
        : { proof: { secret, skewMs: o.config.cluster.forwardSkewMs } }),
    });
  }

  /** Forwards after a SIGHUP use the re-read TLS files. */
  setTls(tls: TlsFiles | undefined): void {
    this.forwarder.setTls(tls);
  }

  /** Registers, then campaigns or stands by; `url` is where the others forward to. */
  async start(url: string): Promise<void> {
    const log = this.o.config.log;
    this.runner = new ClusterRunner({
      client: this.client,
      keepaliveClients: this.keepaliveClients,
      layout: this.layout,
      nodeId: this.o.config.node.id,
      url,
      leaseTtlMs: log.leaseTtlMs,
      demotionMarginMs: log.demotionMarginMs,
      requestTimeoutMs: log.requestTimeoutMs,
      replyBytesMax: connectionDefaults.replyBytesMax,
      logger: this.o.logger,
      lead: (term, l) => this.o.lead(term, l),
      onTakeover: (steps) => this.o.onTakeover?.(steps),
    });
    await this.runner.start().catch((e: unknown) => {
      throw explainEtcdStartError(e, log.endpoints ?? []);
    });
  }

  /**
   * Hands leadership over after the appends in flight finish (at most HANDOVER_WAIT_MS), to
   * `to` if given (a live node other than this one).
   */
  async handOver(to: string | undefined): Promise<HandoverResult> {
    const runner = this.runner;
    const nodeId = this.o.config.node.id;
    if (runner?.term === undefined) {
      return { ok: false, code: "not-leader", message: "this node does not lead the cluster now" };
    }
    if (to === nodeId) return { ok: false, code: "invalid-state", message: `${to} leads already` };
    try {
      if (to !== undefined) {
        const nodes = await listNodes(this.client, this.layout);
        if (!nodes.some((n) => n.nodeId === to)) {
          return { ok: false, code: "invalid-state", message: `no live node ${to}` };
        }
      }
      const { fromTerm } = await runner.handOver(to, HANDOVER_WAIT_MS);
      return { ok: true, answer: { fromNodeId: nodeId, fromTerm, to: to ?? null } };
    } catch (e) {
      if (e instanceof NotLeaderError) return { ok: false, code: "not-leader", message: e.message };
      return { ok: false, code: "unavailable", message: `etcd: ${errorText(e)}` };
    }
  }

  /** The operator's view: membership and leader by linearizable reads, etcd's own health. */
  async view(): Promise<ClusterResponse> {
    const runner = this.runner;
    const [nodes, leader, etcd] = await Promise.all([
      listNodes(this.client, this.layout),
      runner?.leadership.currentLeader(),
      etcdHealth(
        this.o.config.log.endpoints ?? [],
        this.o.config.log.requestTimeoutMs,
        this.security,
      ),
    ]);
    const log = runner?.log;
    const deadline = runner?.leadership.demotionDeadlineMs;
    const stats = log?.stats();
    return {
      clusterId: this.o.clusterId,
      nodeId: this.o.config.node.id,
      mode: "etcd",
      leaderId: leader?.nodeId ?? null,
      leaderUrl: leader?.url ?? null,
      term: leader?.term ?? 0,
      leaseRemainingMs:
        deadline === undefined ? null : Math.max(0, Math.round(deadline - performance.now())),
      commitIndex: log?.lastIndex() ?? 0,
      appliedIndex: log === undefined ? 0 : this.o.appliedIndex(),
      snapshotIndex: stats?.snapshotIndex ?? null,
      logKeys: stats?.logKeys ?? null,
      members: nodes.map((n) => ({
        id: n.nodeId,
        url: n.url,
        role: n.nodeId === leader?.nodeId ? "leader" : "standby",
        leader: n.nodeId === leader?.nodeId,
      })),
      etcd,
    };
  }

  /** Hands leadership over (if leading), deregisters, and closes the connection. */
  async close(): Promise<void> {
    await this.runner?.close();
    this.forwarder.close();
    this.client.close();
    for (const c of this.keepaliveClients) c.close();
  }
}
