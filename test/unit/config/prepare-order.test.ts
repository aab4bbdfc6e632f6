/**
 * `protocol.prepareOrder`: parallel by default (also when the whole `protocol` section is
 * absent), `ordered` accepted, anything else refused at load; and a PostgreSQL participant's
 * `lockTimeoutMs` defaults to 1 s, with 0 (none) allowed.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { ConfigError, validateConfig } from "../../../coordinator/config/load.js";
import { parsePostgresParticipantConfig } from "../../../participants/postgres/config.js";

const pg = { name: "pg-a", connectionString: "postgres://x/y" };
const config = (protocol?: Record<string, unknown>) => ({
  node: { dataDir: "/tmp/unused" },
  tokens: [{ id: "ops", role: "admin", secret: randomBytes(18).toString("base64url") }],
  participants: [{ ...pg, kind: "postgres", unsafeSingleRole: true }],
  ...(protocol ? { protocol } : {}),
});

describe("protocol.prepareOrder", () => {
  test("parallel by default, with or without a protocol section", () => {
    assert.equal(validateConfig(config(), "test", {}).protocol.prepareOrder, "parallel");
    assert.equal(validateConfig(config({}), "test", {}).protocol.prepareOrder, "parallel");
  });

  test("ordered is accepted, anything else refused", () => {
    const ordered = validateConfig(config({ prepareOrder: "ordered" }), "test", {});
    assert.equal(ordered.protocol.prepareOrder, "ordered");
    assert.throws(
      () => validateConfig(config({ prepareOrder: "random" }), "test", {}),
      (e: unknown) => e instanceof ConfigError && /prepareOrder/.test(e.message),
    );
  });

  test("a PostgreSQL branch's lockTimeoutMs: 1 s by default, 0 allowed, negative refused", () => {
    assert.equal(parsePostgresParticipantConfig(pg).lockTimeoutMs, 1000);
    assert.equal(parsePostgresParticipantConfig({ ...pg, lockTimeoutMs: 0 }).lockTimeoutMs, 0);
    assert.throws(() => parsePostgresParticipantConfig({ ...pg, lockTimeoutMs: -1 }));
  });
});
