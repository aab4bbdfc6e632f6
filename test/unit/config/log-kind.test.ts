/**
 * The `log` section of the node's configuration: `local` stays the default and refuses etcd
 * fields; `etcd` needs endpoints and a cluster id, a lease TTL in whole seconds with a
 * demotion margin under half of it, and a per-transaction payload limit whose record fits one
 * etcd request (so enlist answers 413 instead of a commit failing to log).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { ETCD_PAYLOAD_BYTES_MAX, recordBytesMax } from "../../../coordinator/cluster/sizes.js";
import { ConfigError, validateConfig } from "../../../coordinator/config/load.js";
import { etcdLogDefaults } from "../../../coordinator/log/etcd/etcd-decision-log.js";

const config = (log: Record<string, unknown>, limits: Record<string, unknown> = {}) => ({
  node: { dataDir: "/tmp/unused" },
  tokens: [{ id: "ops", role: "admin", secret: randomBytes(18).toString("base64url") }],
  participants: [
    { name: "pg-a", kind: "postgres", connectionString: "postgres://x/y", unsafeSingleRole: true },
  ],
  log,
  limits,
});

const etcd = { kind: "etcd", endpoints: ["127.0.0.1:52379"], clusterId: "c1" };
const fits = { payloadBytesPerTransactionMax: ETCD_PAYLOAD_BYTES_MAX };

function refuses(raw: unknown, why: RegExp): void {
  assert.throws(
    () => validateConfig(raw, "test", {}),
    (e: unknown) => e instanceof ConfigError && why.test(e.message),
  );
}

describe("log.kind", () => {
  test("local is the default and keeps the WAL fields", () => {
    const c = validateConfig(config({}), "test", {});
    assert.equal(c.log.kind, "local");
    assert.equal(c.log.segmentBytesMax, 64 * 1024 * 1024);
    refuses(config({ endpoints: ["127.0.0.1:52379"] }), /apply only with log.kind: etcd/);
  });

  test("etcd with endpoints, a cluster id and a payload limit that fits loads", () => {
    const c = validateConfig(config(etcd, fits), "test", {});
    assert.equal(c.log.kind, "etcd");
    assert.equal(c.log.leaseTtlMs, 5000);
    assert.ok(recordBytesMax(ETCD_PAYLOAD_BYTES_MAX) <= etcdLogDefaults.batchBytesMax);
  });

  test("etcd refuses what cannot work", () => {
    refuses(config({ kind: "etcd", clusterId: "c1" }, fits), /needs log.endpoints/);
    refuses(config({ kind: "etcd", endpoints: ["e:1"] }, fits), /needs log.clusterId/);
    refuses(config({ ...etcd, leaseTtlMs: 4500 }, fits), /whole seconds/);
    refuses(config({ ...etcd, demotionMarginMs: 2500 }, fits), /under half/);
    refuses(config({ ...etcd, clusterId: "a/b" }, fits), /clusterId/);
    // The default payload limit (4 MiB) does not fit etcd's 1.5 MiB request.
    refuses(config(etcd), /payloadBytesPerTransactionMax \d+: with log.kind etcd at most/);
    refuses(config(etcd, { payloadBytesPerTransactionMax: ETCD_PAYLOAD_BYTES_MAX + 1 }), /at most/);
  });
});
