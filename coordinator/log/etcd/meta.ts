/**
 * `meta`: the cluster id and format version, created once (a create-if-absent Txn); every
 * later open checks it, so a node never appends to another cluster's or another format's log.
 */
import type { Etcd3 } from "etcd3";
import { EtcdFormatError } from "./errors.js";
import type { EtcdLayout } from "./layout.js";
import { createRevisionIs, get, put, readInFailure } from "./txn.js";
import {
  VALUE_FORMAT_VERSION,
  decodeValue,
  encodeValue,
  schemas,
  type MetaValue,
} from "./values.js";

export async function ensureMeta(client: Etcd3, layout: EtcdLayout): Promise<void> {
  const mine: MetaValue = { version: VALUE_FORMAT_VERSION, clusterId: layout.clusterId };
  // Idempotent: re-sending after a lost answer finds the same value.
  const res = await client.kv.txn({
    compare: [createRevisionIs(layout.meta, 0)],
    success: [put(layout.meta, encodeValue(mine))],
    failure: [get(layout.meta)],
  });
  if (res.succeeded) return;
  const kv = readInFailure(res, 0);
  if (kv === undefined) throw new EtcdFormatError(layout.meta.toString(), "meta vanished");
  const found = decodeValue(schemas.meta, layout.meta, kv.value);
  if (found.clusterId !== layout.clusterId)
    throw new EtcdFormatError(layout.meta.toString(), `cluster id is '${found.clusterId}'`);
}
