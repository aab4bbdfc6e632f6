/**
 * Proves, against the real etcd cluster, that the decision log's etcd connection reports every
 * request it sends, once, by `Service.method` (client.ts's `onRequest`, counted by the node as
 * `verdict_etcd_requests_total` and used by bench/cluster.ts for round trips per transfer):
 * a put, a read and a Txn are three requests.
 */
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import assert from "node:assert/strict";
import { connectEtcd, connectionDefaults } from "../../../coordinator/log/etcd/client.js";
import { endpoints, ensureEtcd } from "./helpers.js";

test("every etcd request is counted once, by method", async () => {
  await ensureEtcd();
  const counts = new Map<string, number>();
  const client = connectEtcd({
    endpoints,
    ...connectionDefaults,
    onRequest: (method) => counts.set(method, (counts.get(method) ?? 0) + 1),
  });
  const key = `/verdict-test/request-counter/${randomBytes(6).toString("hex")}`;
  try {
    await client.put(key).value("1");
    assert.equal(await client.get(key).string(), "1");
    await client.if(key, "Value", "==", "1").then(client.delete().key(key)).commit();
    assert.deepEqual(Object.fromEntries(counts), { "KV.put": 1, "KV.range": 1, "KV.txn": 1 });
  } finally {
    client.close();
  }
});
