/**
 * The real configuration loader refuses guessable credentials and a demo reachable from
 * outside: secrets of 16 spaces, of one repeated character, of too few distinct characters,
 * one secret shared by two tokens (a client and an admin), a weak secret from the environment
 * or for the metrics token; a `local-demo` node or metrics listener on a non-loopback host. And
 * the configurations the project ships still load: the demo's (deploy/demo/make-config.sh run
 * for real), and the shape the test nodes use (random base64url secrets).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, test } from "node:test";
import { ConfigError, loadConfig, validateConfig } from "../../../coordinator/config/load.js";

const strong = (): string => randomBytes(18).toString("base64url");

const config = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  node: { dataDir: "/tmp/unused" },
  tokens: [
    { id: "orders", role: "client", secret: strong() },
    { id: "ops", role: "admin", secret: strong() },
  ],
  // Statement roles are another check's business (docs/security.md): opted out here.
  participants: [
    { name: "pg-a", kind: "postgres", connectionString: "postgres://x/y", unsafeSingleRole: true },
  ],
  ...over,
});

/** Asserts the loader refuses `raw` with a message matching `why`. */
function refuses(raw: unknown, why: RegExp, env: NodeJS.ProcessEnv = {}): void {
  assert.throws(
    () => validateConfig(raw, "test", env),
    (e: unknown) => e instanceof ConfigError && why.test(e.message),
  );
}

describe("secrets", () => {
  test("strong random secrets load", () => {
    assert.equal(validateConfig(config(), "test", {}).tokens.length, 2);
  });

  for (const [what, secret] of [
    ["16 spaces", " ".repeat(16)],
    ["16 identical characters", "a".repeat(16)],
    ["a short pattern repeated", "abcabcabcabcabca"],
    ["15 characters", "Ab3$Ef6^Hi9*Kl0"],
  ] as const) {
    test(`refused: ${what}`, () => {
      refuses(
        config({ tokens: [{ id: "orders", role: "client", secret }] }),
        /token orders: secret is weak/,
      );
    });
  }

  test("refused: one secret for a client and an admin token", () => {
    const shared = strong();
    refuses(
      config({
        tokens: [
          { id: "orders", role: "client", secret: shared },
          { id: "ops", role: "admin", secret: shared },
        ],
      }),
      /token ops: same secret as token orders/,
    );
  });

  test("refused: a weak secret from the environment, and an unset one", () => {
    const tokens = [{ id: "orders", role: "client", secretEnv: "VERDICT_T" }];
    refuses(config({ tokens }), /VERDICT_T is weak/, { VERDICT_T: "x".repeat(32) });
    refuses(config({ tokens }), /VERDICT_T is unset/, {});
    assert.ok(validateConfig(config({ tokens }), "test", { VERDICT_T: strong() }));
  });

  test("the metrics token obeys the same rule and may not be an API token's secret", () => {
    refuses(config({ metrics: { token: "m".repeat(20) } }), /metrics token: secret is weak/);
    const c = config();
    const apiSecret = (c.tokens as { secret: string }[])[0]?.secret;
    refuses({ ...c, metrics: { token: apiSecret } }, /metrics token: same secret as token orders/);
    assert.equal(
      validateConfig(config({ metrics: { token: strong() } }), "t", {}).metrics.cacheMs,
      1000,
    );
  });
});

describe("the local-demo profile listens on loopback only", () => {
  const demo = (host: string, metrics?: Record<string, unknown>) =>
    config({
      profile: "local-demo",
      node: { dataDir: "/tmp/unused", host },
      ...(metrics ? { metrics } : {}),
    });

  for (const host of ["0.0.0.0", "10.1.2.3", "::", "demo.example"]) {
    test(`refused: node.host ${host}`, () => refuses(demo(host), /node.host .*loopback only/));
  }
  test("refused: a metrics listener off loopback", () => {
    refuses(demo("127.0.0.1", { listen: "0.0.0.0:9464" }), /metrics.listen .*loopback only/);
  });
  for (const host of ["127.0.0.1", "127.0.0.2", "localhost", "::1"]) {
    test(`accepted: ${host}`, () => assert.ok(validateConfig(demo(host), "t", {})));
  }
  test("a production node may listen anywhere", () => {
    assert.ok(validateConfig(config({ node: { dataDir: "/tmp/x", host: "0.0.0.0" } }), "t", {}));
  });
});

describe("the shipped configurations still load", () => {
  test("deploy/demo/make-config.sh's config", async () => {
    const dir = await mkdtemp(join(tmpdir(), "verdict-demo-config-"));
    try {
      await promisify(execFile)("bash", ["deploy/demo/make-config.sh", dir]);
      const loaded = await loadConfig(join(dir, "verdict.yaml"), {});
      assert.equal(loaded.profile, "local-demo");
      assert.equal(loaded.tokens.length, 2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
