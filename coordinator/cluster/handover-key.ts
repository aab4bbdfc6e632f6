/**
 * The `handover` key: an operator handed leadership to a named node. It lives on its own short
 * lease, so the others stay out of the election for a bounded time only (a target that never
 * campaigns does not leave the cluster leaderless for long). Written under the leadership
 * compare like every other write.
 */
import type { Etcd3 } from "etcd3";
import { EtcdUnavailableError } from "../log/etcd/errors.js";
import type { EtcdLayout } from "../log/etcd/layout.js";
import { createRevisionIs, put } from "../log/etcd/txn.js";
import { decodeValue, encodeValue, schemas, type HandoverValue } from "../log/etcd/values.js";
import { NotLeaderError } from "../log/errors.js";

export async function writeHandover(
  client: Etcd3,
  layout: EtcdLayout,
  o: { toNodeId: string; fromTerm: number; ttlSeconds: number },
): Promise<void> {
  const value: HandoverValue = { version: 1, toNodeId: o.toNodeId, fromTerm: o.fromTerm };
  try {
    const grant = await client.leaseClient.leaseGrant({ TTL: o.ttlSeconds });
    const res = await client.kv.txn({
      compare: [createRevisionIs(layout.leader, o.fromTerm)],
      success: [put(layout.handover, encodeValue(value), grant.ID)],
    });
    if (!res.succeeded) throw new NotLeaderError(undefined, o.fromTerm);
  } catch (e) {
    if (e instanceof NotLeaderError) throw e;
    throw new EtcdUnavailableError("handover", { cause: e });
  }
}

/** The handover in force, by a linearizable read (undefined: none). */
export async function readHandover(
  client: Etcd3,
  layout: EtcdLayout,
): Promise<HandoverValue | undefined> {
  const res = await client.kv.range({ key: layout.handover });
  const kv = res.kvs[0];
  return kv === undefined ? undefined : decodeValue(schemas.handover, layout.handover, kv.value);
}
