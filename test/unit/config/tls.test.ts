/**
 * The `node.tls` and `cluster` sections of the configuration (docs/tls.md). Proves: TLS is
 * off by default, `clientCertificate` defaults to `off` and any other mode needs `caFile`; a
 * node serving HTTPS refuses an http:// `advertiseUrl`; `cluster.forwardSecretFile` is
 * refused on the local log; the forwarding skew window has its default and bounds.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { ConfigError, validateConfig } from "../../../coordinator/config/load.js";

const etcd = { kind: "etcd", endpoints: ["127.0.0.1:52379"], clusterId: "c1" };
const config = (extra: { node?: object; cluster?: object; log?: object }) => ({
  node: { dataDir: "/tmp/unused", ...extra.node },
  tokens: [{ id: "ops", role: "admin", secret: randomBytes(18).toString("base64url") }],
  participants: [
    { name: "pg-a", kind: "postgres", connectionString: "postgres://x/y", unsafeSingleRole: true },
  ],
  ...(extra.cluster ? { cluster: extra.cluster } : {}),
  log: extra.log ?? {},
  limits: { payloadBytesPerTransactionMax: 256 * 1024 },
});
const files = { certFile: "/etc/verdict/node.crt", keyFile: "/etc/verdict/node.key" };

function refuses(raw: unknown, why: RegExp): void {
  assert.throws(
    () => validateConfig(raw, "test", {}),
    (e: unknown) => e instanceof ConfigError && why.test(e.message),
  );
}

describe("node.tls and cluster", () => {
  test("TLS is off by default; clientCertificate defaults to off", () => {
    assert.equal(validateConfig(config({}), "test", {}).node.tls, undefined);
    const c = validateConfig(config({ node: { tls: files } }), "test", {});
    assert.equal(c.node.tls?.clientCertificate, "off");
  });

  test("request and require need caFile", () => {
    for (const mode of ["request", "require"]) {
      refuses(
        config({ node: { tls: { ...files, clientCertificate: mode } } }),
        new RegExp(`clientCertificate ${mode} needs node.tls.caFile`),
      );
      const tls = { ...files, caFile: "/etc/verdict/ca.crt", clientCertificate: mode };
      assert.equal(
        validateConfig(config({ node: { tls } }), "test", {}).node.tls?.caFile,
        tls.caFile,
      );
    }
    refuses(
      config({ node: { tls: { ...files, clientCertificate: "maybe" } } }),
      /clientCertificate/,
    );
  });

  test("a node serving HTTPS advertises an https URL", () => {
    refuses(
      config({ node: { tls: files, advertiseUrl: "http://10.0.0.1:7400" }, log: etcd }),
      /advertiseUrl http:\/\/10.0.0.1:7400: the node serves HTTPS/,
    );
    const ok = config({ node: { tls: files, advertiseUrl: "https://10.0.0.1:7400" }, log: etcd });
    assert.equal(validateConfig(ok, "test", {}).node.advertiseUrl, "https://10.0.0.1:7400");
  });

  test("forwardSecretFile only in an etcd cluster; the skew window is bounded", () => {
    refuses(config({ cluster: { forwardSecretFile: "/s" } }), /only nodes of an etcd cluster/);
    const c = validateConfig(config({ cluster: { forwardSecretFile: "/s" }, log: etcd }), "t", {});
    assert.equal(c.cluster.forwardSkewMs, 30_000);
    refuses(config({ cluster: { forwardSkewMs: 999 }, log: etcd }), /forwardSkewMs/);
    refuses(config({ cluster: { forwardSkewMs: 300_001 }, log: etcd }), /forwardSkewMs/);
  });
});
