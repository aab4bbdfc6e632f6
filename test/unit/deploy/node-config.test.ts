// Proves that the node configuration docker-compose.yml mounts (deploy/docker/verdict.yaml) is a
// real production configuration: Verdict's own loader (coordinator/config/load.ts) accepts it
// with the environment compose gives the container, and each participant's own parser accepts
// its section; it holds no credential (production profile, token secrets and the PostgreSQL
// password from the environment, every variable it reads passed by compose, the tokens with no
// default in compose either), and without that environment the loader refuses it, naming what is missing. The
// node listens on the port compose publishes and the image exposes, and keeps its data on
// the volume compose mounts.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { ConfigError, loadConfig } from "../../../coordinator/config/load.js";
import type { Config } from "../../../coordinator/config/schema.js";
import { parseKafkaParticipantConfig } from "../../../participants/kafka/config.js";
import { parsePostgresParticipantConfig } from "../../../participants/postgres/config.js";
import { parseRedisParticipantConfig } from "../../../participants/redis/config.js";
import {
  bindMounts,
  commandWords,
  namedVolumeTargets,
  parseCompose,
  parseDockerfile,
  projectDir,
  publishedPorts,
  rawEnvironment,
  readProjectFile,
  service,
} from "./deploy-files.js";

const compose = parseCompose(readProjectFile("docker-compose.yml"));
const verdict = service(compose, "verdict");
const configTarget = commandWords(verdict).at(-1) ?? "";
const configSource = bindMounts(compose).find((m) => m.target === configTarget)?.source ?? "";
const configPath = join(projectDir, configSource);
const variables = rawEnvironment(verdict);

/** The container's environment, as compose would set it, with fresh values. */
function containerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of variables.keys()) env[name] = randomBytes(18).toString("base64url");
  return env;
}

/** `${NAME}` references in the file's text. */
const referenced = [...readFileSync(configPath, "utf8").matchAll(/\$\{([A-Z_][A-Z0-9_]*)\}/g)].map(
  (m) => m[1] ?? "",
);

void describe("deploy/docker/verdict.yaml, the node config compose mounts", () => {
  void test("the mount source is the file read here", () => {
    assert.equal(configSource, "./deploy/docker/verdict.yaml");
    assert.equal(configTarget, "/etc/verdict/verdict.yaml");
  });

  void test("Verdict's loader accepts it with the container's environment", async () => {
    const env = containerEnv();
    const config: Config = await loadConfig(configPath, env);
    assert.equal(config.profile, "production");
    assert.ok(config.tokens.length >= 2);
    assert.deepEqual(
      config.tokens.map((t) => t.role).sort(),
      ["admin", "client"],
      "a client and an admin token",
    );
    const parsers = {
      postgres: parsePostgresParticipantConfig,
      redis: parseRedisParticipantConfig,
      kafka: parseKafkaParticipantConfig,
    };
    for (const p of config.participants) {
      const { kind, ...rest } = p;
      assert.doesNotThrow(() => parsers[kind](rest), `participant ${p.name}`);
    }
    const pg = config.participants.find((p) => p.kind === "postgres") as Record<string, unknown>;
    assert.equal(pg.password, env.VERDICT_PG_PASSWORD, "the password comes from the environment");
  });

  void test("it holds no credential: secrets come from variables compose passes", () => {
    const raw = parse(readFileSync(configPath, "utf8")) as {
      tokens: { secret?: string; secretEnv?: string }[];
    };
    for (const t of raw.tokens) {
      assert.equal(t.secret, undefined, "no inline token secret");
      assert.ok(t.secretEnv !== undefined && variables.has(t.secretEnv), `${t.secretEnv} passed`);
      assert.match(
        variables.get(t.secretEnv) ?? "",
        /^\$\{[A-Z_]+(:\?[^}]*)?\}$/,
        `${t.secretEnv}: compose gives no default token`,
      );
    }
    assert.ok(referenced.includes("VERDICT_PG_PASSWORD"));
    for (const name of referenced) assert.ok(variables.has(name), `compose does not pass ${name}`);
  });

  void test("without the environment the loader refuses it, naming what is missing", async () => {
    await assert.rejects(loadConfig(configPath, {}), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(
        e.message,
        /participants\[0\]\.password: environment variable VERDICT_PG_PASSWORD is unset/,
      );
      return true;
    });
    const withoutTokens = { VERDICT_PG_PASSWORD: containerEnv().VERDICT_PG_PASSWORD };
    await assert.rejects(loadConfig(configPath, withoutTokens), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /VERDICT_CLIENT_TOKEN is unset/);
      assert.match(e.message, /VERDICT_ADMIN_TOKEN is unset/);
      return true;
    });
  });

  void test("the node listens where compose and the image expect, and keeps data on the volume", async () => {
    const config = await loadConfig(configPath, containerEnv());
    const published = publishedPorts(compose).filter((p) => p.service === "verdict");
    assert.deepEqual(
      published.map((p) => p.target),
      [String(config.node.port)],
    );
    const stages = parseDockerfile(readProjectFile("deploy/docker/Dockerfile"));
    const expose = stages.at(-1)?.instructions.find((i) => i.keyword === "EXPOSE")?.args;
    assert.equal(expose, String(config.node.port));
    assert.equal(config.node.host, "0.0.0.0", "reachable from the published port");
    assert.ok(namedVolumeTargets(verdict).has(config.node.dataDir), "dataDir is a volume");
  });
});
