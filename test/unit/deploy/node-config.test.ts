// Proves that the node configuration docker-compose.yml mounts into its three nodes
// (deploy/docker/verdict.yaml) is a real production configuration: Verdict's own loader
// (coordinator/config/load.ts) accepts it with the environment compose gives each container,
// and each participant's own parser accepts its section; each node gets its own id and
// advertises the name the others reach it by; the decision log is the compose file's three etcd
// members, one cluster id for the three nodes. It holds no credential (production profile,
// token secrets and the PostgreSQL password from the environment, every variable it reads
// passed by compose, the tokens with no default in compose either), and without that
// environment the loader refuses it, naming what is missing. Each node listens on the port
// compose publishes and the image exposes, and keeps its data on a volume of its own.
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
const nodes = ["verdict-1", "verdict-2", "verdict-3"];
const etcdMembers = ["etcd-1", "etcd-2", "etcd-3"];
const verdict = service(compose, "verdict-1");
const configTarget = commandWords(verdict).at(-1) ?? "";
const configSource = bindMounts(compose).find((m) => m.target === configTarget)?.source ?? "";
const configPath = join(projectDir, configSource);
const variables = rawEnvironment(verdict);

/**
 * A node's environment, as compose would set it: its literal values (the node id) as they are,
 * each `${…}` reference (a secret) given a fresh value.
 */
function containerEnv(node = "verdict-1"): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of rawEnvironment(service(compose, node))) {
    env[name] = value.includes("${") ? randomBytes(18).toString("base64url") : value;
  }
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

  void test("every node mounts this one file", () => {
    for (const node of nodes) {
      const target = commandWords(service(compose, node)).at(-1);
      const mount = bindMounts(compose).find((m) => m.service === node && m.target === target);
      assert.equal(mount?.source, configSource, node);
    }
  });

  void test("each node gets its own id and advertises its service name; one etcd cluster", async () => {
    const configs = await Promise.all(
      nodes.map((node) => loadConfig(configPath, containerEnv(node))),
    );
    assert.deepEqual(
      configs.map((c) => c.node.id),
      nodes,
    );
    assert.deepEqual(
      configs.map((c) => c.node.advertiseUrl),
      nodes.map((node) => `http://${node}:${configs[0]?.node.port}`),
    );
    for (const config of configs) {
      assert.equal(config.log.kind, "etcd");
      assert.deepEqual(
        config.log.endpoints,
        etcdMembers.map((m) => `${m}:2379`),
      );
      assert.equal(config.log.clusterId, configs[0]?.log.clusterId);
    }
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
    const { VERDICT_NODE_ID, VERDICT_PG_PASSWORD, VERDICT_PG_STMT_PASSWORD } = containerEnv();
    const withoutTokens = { VERDICT_NODE_ID, VERDICT_PG_PASSWORD, VERDICT_PG_STMT_PASSWORD };
    await assert.rejects(loadConfig(configPath, withoutTokens), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /VERDICT_CLIENT_TOKEN is unset/);
      assert.match(e.message, /VERDICT_ADMIN_TOKEN is unset/);
      return true;
    });
  });

  void test("each node listens where compose and the image expect, and keeps data on its own volume", async () => {
    const config = await loadConfig(configPath, containerEnv());
    const stages = parseDockerfile(readProjectFile("deploy/docker/Dockerfile"));
    const expose = stages.at(-1)?.instructions.find((i) => i.keyword === "EXPOSE")?.args;
    assert.equal(expose, String(config.node.port));
    assert.equal(config.node.host, "0.0.0.0", "reachable from the published port");
    const volumes = new Set<string>();
    for (const node of nodes) {
      const published = publishedPorts(compose).filter((p) => p.service === node);
      assert.deepEqual(
        published.map((p) => p.target),
        [String(config.node.port)],
        node,
      );
      const volume = namedVolumeTargets(service(compose, node)).get(config.node.dataDir);
      assert.ok(volume !== undefined, `${node}: dataDir is not a volume`);
      volumes.add(volume);
    }
    assert.equal(volumes.size, nodes.length, "no two nodes share a data volume");
  });
});
