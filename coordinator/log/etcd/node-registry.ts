/**
 * `nodes/<id>`: each node's URL and role on the node's own lease (live membership: a node
 * that stops renewing disappears). Not safety-critical (leadership is the `leader` key), so
 * the client library's lease keeps it alive; when that lease is lost, the node registers
 * again on a new one.
 */
import type { Etcd3, Lease } from "etcd3";
import type { EtcdLayout } from "./layout.js";
import { prefixEnd } from "./layout.js";
import { decodeValue, encodeValue, schemas, type NodeValue } from "./values.js";

export class NodeRegistration {
  private lease: Lease | undefined;
  private value: NodeValue;
  private closed = false;

  constructor(
    private readonly client: Etcd3,
    private readonly layout: EtcdLayout,
    nodeId: string,
    url: string,
    private readonly ttlSeconds: number,
  ) {
    this.value = { version: 1, nodeId, url, role: "standby" };
  }

  /** Writes nodes/<id> on a fresh lease. */
  async register(): Promise<void> {
    const lease = this.client.lease(this.ttlSeconds);
    this.lease = lease;
    lease.on("lost", () => {
      if (!this.closed && this.lease === lease) void this.register().catch(() => undefined);
    });
    await lease.put(this.layout.node(this.value.nodeId)).value(encodeValue(this.value)).exec();
  }

  async setRole(role: NodeValue["role"]): Promise<void> {
    this.value = { ...this.value, role };
    await this.lease
      ?.put(this.layout.node(this.value.nodeId))
      .value(encodeValue(this.value))
      .exec();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.lease?.revoke().catch(() => undefined);
  }
}

/** Every registered node (a linearizable read). */
export async function listNodes(client: Etcd3, layout: EtcdLayout): Promise<NodeValue[]> {
  const res = await client.kv.range({
    key: layout.nodesPrefix,
    range_end: prefixEnd(layout.nodesPrefix),
  });
  return res.kvs.map((kv) => decodeValue(schemas.node, kv.key, kv.value));
}
