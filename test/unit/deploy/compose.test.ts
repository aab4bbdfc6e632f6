// Proves that docker-compose.yml and the coordinator's Dockerfile stay in step with deploy/local
// (no Docker engine here, so the files themselves are read and compared): every setting two-phase
// commit depends on (prepared transactions and fsync in PostgreSQL; the fsynced append-only file
// and noeviction in Redis; Kafka's single-node replication, ISR and no auto-created topics;
// etcd's version, compaction and quota) has the same value on both sides and its safe value;
// there are three coordinator nodes, one image and one command, over three etcd members that
// form one cluster; every port is published on 127.0.0.1 only; every file compose mounts or
// builds from exists; and the image runs a pinned Node LTS ≥ 22 as a non-root user and checks
// its readiness (/readyz). (compose-schema.test.ts checks the file against the Compose schema.)
// (node-config.test.ts loads the mounted node configuration with Verdict's own loader.)
// A drift fails naming the setting and both values; a self-check shows the comparison can fail.
import { existsSync, statSync } from "node:fs";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  assignedValue,
  bindMounts,
  commandWords,
  environment,
  etcdFlag,
  kafkaProperty,
  kafkaPropertyOfEnv,
  parseCompose,
  parseDockerfile,
  pinnedImage,
  postgresOption,
  projectDir,
  publishedPorts,
  readProjectFile,
  redisOption,
  service,
  shellDefault,
  spacedValue,
  withDefaults,
  type Compose,
} from "./deploy-files.js";

const composePath = "docker-compose.yml";
const dockerfilePath = "deploy/docker/Dockerfile";
const coordinatorServices = ["verdict-1", "verdict-2", "verdict-3"];
const etcdServices = ["etcd-1", "etcd-2", "etcd-3"];
const coordinatorCommand =
  "node dist/coordinator/cli/main.js start --config /etc/verdict/verdict.yaml";
const nodeMajorMin = 22;
const postgresInitPath = "deploy/docker/postgres/init.sh";

// Read at test time, never copied: deploy/local is the reference the compose side must follow.
const projectFiles = [
  "deploy/local/local.sh",
  "deploy/local/postgres.sh",
  "deploy/local/redis.sh",
  "deploy/local/kafka.sh",
  "deploy/local/kafka/pom.xml",
  "deploy/local/etcd.sh",
  postgresInitPath,
] as const;
type ProjectFile = (typeof projectFiles)[number];

interface Sources {
  compose: Compose;
  files: ReadonlyMap<ProjectFile, string>;
}

function loadSources(): Sources {
  return {
    compose: parseCompose(readProjectFile(composePath)),
    files: new Map(projectFiles.map((path) => [path, readProjectFile(path)])),
  };
}

/** A setting that must agree: where deploy/local keeps it, where compose keeps it, what is safe. */
interface Setting {
  name: string;
  local: { file: ProjectFile; read: (text: string) => string | undefined };
  compose: (sources: Sources) => string | undefined;
  /** The value (or test) both sides must hold besides agreeing, where safety demands one. */
  safe?: string | ((value: string) => boolean);
}

function postgresConf(name: string, safe?: Setting["safe"]): Setting {
  return {
    name: `PostgreSQL ${name}`,
    local: { file: "deploy/local/postgres.sh", read: (text) => assignedValue(text, name) },
    compose: ({ compose }) => postgresOption(service(compose, "postgres"), name),
    safe,
  };
}

function redisConf(name: string, safe?: string): Setting {
  return {
    name: `Redis ${name}`,
    local: { file: "deploy/local/redis.sh", read: (text) => spacedValue(text, name) },
    compose: ({ compose }) => redisOption(service(compose, "redis"), name),
    safe,
  };
}

function kafkaConf(name: string, safe?: string): Setting {
  return {
    name: `Kafka ${name}`,
    local: { file: "deploy/local/kafka.sh", read: (text) => assignedValue(text, name) },
    compose: ({ compose }) => kafkaProperty(service(compose, "kafka"), name),
    safe,
  };
}

/** An etcd flag: deploy/local/local.sh's default for it, each compose member's own value. */
function etcdConf(name: string, variable: string, safe?: Setting["safe"]): Setting {
  return {
    name: `etcd ${name}`,
    local: { file: "deploy/local/local.sh", read: (text) => shellDefault(text, variable) },
    compose: ({ compose }) =>
      sameOnEvery(etcdServices.map((m) => etcdFlag(service(compose, m), name))),
    safe,
  };
}

/** The one value every member holds, or undefined when they differ. */
function sameOnEvery(values: (string | undefined)[]): string | undefined {
  return new Set(values).size === 1 ? values[0] : undefined;
}

/** A port deploy/local defaults to, published under the same number on the host. */
function loopbackPort(variable: string, serviceName: string): Setting {
  return {
    name: `${serviceName} host port (${variable})`,
    local: { file: "deploy/local/local.sh", read: (text) => shellDefault(text, variable) },
    compose: ({ compose }) => {
      const ports = publishedPorts(compose).filter((port) => port.service === serviceName);
      return ports.length === 1 ? ports[0]?.published : undefined;
    },
  };
}

/** The role statement without its password: `create role verdict login createdb`. */
function roleStatement(text: string): string | undefined {
  const statement = /create role [^;\n]*/i.exec(text)?.[0];
  return statement
    ?.replace(/\s+password\s+\S+/i, "")
    .replace(/["';]+$/, "")
    .trim();
}

const settings: Setting[] = [
  postgresConf("max_prepared_transactions", (value) => Number(value) >= 256),
  postgresConf("max_connections"),
  postgresConf("fsync", "on"),
  postgresConf("synchronous_commit", "on"),
  {
    name: "PostgreSQL databases",
    local: {
      file: "deploy/local/postgres.sh",
      read: (text) => /for db in ([\w ]+);/.exec(text)?.[1]?.trim().split(/\s+/).sort().join(" "),
    },
    compose: ({ compose, files }) => {
      const mounted = (service(compose, "postgres")?.volumes ?? []).some(
        (volume) =>
          typeof volume === "string" &&
          volume.startsWith(`./${postgresInitPath}:/docker-entrypoint-initdb.d/`),
      );
      const init = files.get(postgresInitPath) ?? "";
      const databases = [...init.matchAll(/create database (\w+)/gi)].map((m) => m[1]).sort();
      return mounted ? databases.join(" ") : undefined;
    },
    safe: (value) => value.split(" ").includes("verdict_a"),
  },
  {
    name: "PostgreSQL role",
    local: { file: "deploy/local/postgres.sh", read: roleStatement },
    compose: ({ files }) => roleStatement(files.get(postgresInitPath) ?? ""),
    safe: (value) => !/superuser/i.test(value),
  },
  redisConf("appendonly", "yes"),
  redisConf("appendfsync", "always"),
  redisConf("maxmemory-policy", "noeviction"),
  redisConf("save"),
  kafkaConf("process.roles", "broker,controller"),
  kafkaConf("node.id"),
  kafkaConf("offsets.topic.replication.factor", "1"),
  kafkaConf("offsets.topic.num.partitions"),
  kafkaConf("transaction.state.log.replication.factor", "1"),
  kafkaConf("transaction.state.log.min.isr", "1"),
  kafkaConf("transaction.state.log.num.partitions"),
  kafkaConf("share.coordinator.state.topic.replication.factor", "1"),
  kafkaConf("share.coordinator.state.topic.min.isr", "1"),
  kafkaConf("default.replication.factor", "1"),
  kafkaConf("min.insync.replicas", "1"),
  kafkaConf("num.partitions"),
  kafkaConf("group.initial.rebalance.delay.ms", "0"),
  kafkaConf("auto.create.topics.enable", "false"),
  {
    name: "Kafka version",
    local: {
      file: "deploy/local/kafka/pom.xml",
      read: (text) => /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(text)?.[1],
    },
    compose: ({ compose }) =>
      /^apache\/kafka:(.+)$/.exec(service(compose, "kafka")?.image ?? "")?.[1],
  },
  etcdConf("auto-compaction-retention", "VERDICT_ETCD_COMPACTION_RETENTION"),
  etcdConf("quota-backend-bytes", "VERDICT_ETCD_QUOTA_BYTES", (value) => Number(value) >= 2 ** 30),
  {
    name: "etcd auto-compaction-mode",
    local: {
      file: "deploy/local/etcd.sh",
      read: (text) => /--auto-compaction-mode (\w+)/.exec(text)?.[1],
    },
    compose: ({ compose }) =>
      sameOnEvery(etcdServices.map((m) => etcdFlag(service(compose, m), "auto-compaction-mode"))),
    safe: "revision",
  },
  {
    name: "etcd version",
    local: {
      file: "deploy/local/etcd.sh",
      read: (text) => shellDefault(text, "VERDICT_ETCD_VERSION"),
    },
    compose: ({ compose }) =>
      sameOnEvery(
        etcdServices.map((m) => /\/etcd:v([\d.]+)$/.exec(service(compose, m)?.image ?? "")?.[1]),
      ),
  },
  loopbackPort("VERDICT_PG_PORT", "postgres"),
  loopbackPort("VERDICT_REDIS_PORT", "redis"),
  loopbackPort("VERDICT_KAFKA_PORT", "kafka"),
];

/** Why a setting drifted or is unsafe, or undefined when both sides agree on a safe value. */
function driftOf(setting: Setting, sources: Sources): string | undefined {
  const text = sources.files.get(setting.local.file);
  assert.ok(text !== undefined, `${setting.local.file} is not among the files read`);
  const local = setting.local.read(text);
  const composed = setting.compose(sources);
  if (local === undefined) return `${setting.name}: not found in ${setting.local.file}`;
  if (composed === undefined) return `${setting.name}: not found in ${composePath}`;
  if (local !== composed) {
    return `${setting.name}: ${setting.local.file} has "${local}", ${composePath} has "${composed}"`;
  }
  const { safe } = setting;
  const isSafe = safe === undefined || (typeof safe === "string" ? local === safe : safe(local));
  if (!isSafe) return `${setting.name}: both sides have "${local}", which is not safe for 2PC`;
  return undefined;
}

void describe("docker-compose.yml keeps deploy/local's settings", () => {
  const sources = loadSources();

  for (const setting of settings) {
    void test(setting.name, () => {
      const drift = driftOf(setting, sources);
      assert.equal(drift, undefined, drift);
    });
  }

  void test("the comparison fails on a drifted or unsafe value (it can fail)", () => {
    const drifted = structuredClone(sources.compose);
    const redis = service(drifted, "redis");
    assert.ok(redis !== undefined && Array.isArray(redis.command));
    redis.command = commandWords(redis).map((word) => (word === "always" ? "everysec" : word));
    const appendfsync = settings.find((setting) => setting.name === "Redis appendfsync");
    assert.ok(appendfsync !== undefined);
    assert.match(
      driftOf(appendfsync, { ...sources, compose: drifted }) ?? "",
      /deploy\/local\/redis\.sh has "always", docker-compose\.yml has "everysec"/,
    );

    const unsafeLocal = new Map(sources.files);
    const redisSh = sources.files.get("deploy/local/redis.sh") ?? "";
    unsafeLocal.set(
      "deploy/local/redis.sh",
      redisSh.replace("appendfsync always", "appendfsync everysec"),
    );
    assert.match(driftOf(appendfsync, { compose: drifted, files: unsafeLocal }) ?? "", /not safe/);
  });

  void test("KAFKA_* variables map to broker properties as the apache/kafka image maps them", () => {
    assert.equal(
      kafkaPropertyOfEnv("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"),
      "transaction.state.log.min.isr",
    );
    assert.equal(
      kafkaPropertyOfEnv("KAFKA_LISTENER_NAME_INTERNAL_SSL__KEY___X"),
      "listener.name.internal.ssl_key-x",
    );
    assert.equal(kafkaPropertyOfEnv("CLUSTER_ID"), undefined);
    assert.equal(withDefaults("127.0.0.1:${VERDICT_PG_PORT:-55432}:5432"), "127.0.0.1:55432:5432");
  });
});

void describe("docker-compose.yml runs three coordinator nodes over three etcd members, reachable from loopback only", () => {
  const { compose } = loadSources();

  void test("three coordinator services, built from deploy/docker/Dockerfile, one command", () => {
    const coordinators = Object.entries(compose.services).filter(
      ([, svc]) =>
        (typeof svc.build === "object" && svc.build.dockerfile === dockerfilePath) ||
        commandWords(svc).includes("dist/coordinator/cli/main.js"),
    );
    assert.deepEqual(
      coordinators.map(([name]) => name),
      coordinatorServices,
    );
    for (const name of coordinatorServices) {
      assert.equal(commandWords(service(compose, name)).join(" "), coordinatorCommand, name);
    }
    const ids = coordinatorServices.map((name) =>
      environment(service(compose, name)).get("VERDICT_NODE_ID"),
    );
    assert.deepEqual(ids, coordinatorServices, "each node's id is its service name");
  });

  void test("the etcd members form one cluster, each advertising its own service name", () => {
    const flag = (member: string, name: string) => etcdFlag(service(compose, member), name);
    const cluster = etcdServices.map((m) => `${m}=http://${m}:2380`).join(",");
    for (const member of etcdServices) {
      assert.equal(flag(member, "name"), member);
      assert.equal(flag(member, "initial-cluster"), cluster, member);
      assert.equal(flag(member, "advertise-client-urls"), `http://${member}:2379`);
      assert.equal(flag(member, "initial-advertise-peer-urls"), `http://${member}:2380`);
      assert.equal(flag(member, "initial-cluster-token"), flag("etcd-1", "initial-cluster-token"));
      assert.ok(!commandWords(service(compose, member)).includes("--unsafe-no-fsync"));
      const volumes = service(compose, member)?.volumes ?? [];
      assert.ok(volumes.includes(`${member}-data:/var/lib/etcd`), `${member} keeps its own data`);
    }
  });

  void test("the node config each node's command names is mounted read-only, from a file that exists", () => {
    for (const name of coordinatorServices) {
      const configPath = commandWords(service(compose, name)).at(-1);
      const mount = bindMounts(compose).find((m) => m.service === name && m.target === configPath);
      assert.ok(mount !== undefined, `${name}: nothing is mounted at ${configPath}`);
      assert.ok(mount.readOnly, `${name}: ${mount.source} is mounted writable`);
      assert.ok(statSync(projectDir + mount.source).isFile(), `${mount.source} is not a file`);
    }
  });

  void test("every file compose mounts or builds from exists", () => {
    const mounts = bindMounts(compose);
    assert.ok(mounts.length >= 2, "the postgres init script and the node config are mounted");
    for (const m of mounts) {
      assert.ok(existsSync(projectDir + m.source), `${m.service} mounts ${m.source}: missing`);
    }
    for (const [name, svc] of Object.entries(compose.services)) {
      if (typeof svc.build !== "object") continue;
      const context = svc.build.context ?? ".";
      assert.ok(existsSync(projectDir + context), `${name}: build context ${context} missing`);
      const dockerfile = `${context}/${svc.build.dockerfile ?? "Dockerfile"}`;
      assert.ok(existsSync(projectDir + dockerfile), `${name}: ${dockerfile} missing`);
    }
  });

  void test("each node starts after every participant and every etcd member is healthy", () => {
    for (const name of coordinatorServices) {
      const dependsOn = service(compose, name)?.depends_on;
      assert.ok(dependsOn !== undefined && !Array.isArray(dependsOn), "depends_on with conditions");
      for (const dependency of ["postgres", "redis", "kafka", ...etcdServices]) {
        assert.equal(
          dependsOn[dependency]?.condition,
          "service_healthy",
          `${name} → ${dependency}`,
        );
        const healthcheck = service(compose, dependency)?.healthcheck?.test;
        assert.ok(healthcheck !== undefined && healthcheck.length > 0, `${dependency} healthcheck`);
      }
    }
  });

  void test("every published port is bound to 127.0.0.1", () => {
    const ports = publishedPorts(compose);
    assert.ok(ports.length >= 6, "postgres, redis, kafka and the three nodes publish a port");
    for (const port of ports) {
      assert.equal(
        port.hostIp,
        "127.0.0.1",
        `${port.service} publishes ${port.target} beyond loopback`,
      );
    }
  });

  void test("the Kafka broker advertises the loopback port it is published on", () => {
    const kafka = service(compose, "kafka");
    const published = publishedPorts(compose).find((port) => port.service === "kafka");
    assert.ok(published !== undefined);
    const advertised = environment(kafka).get("KAFKA_ADVERTISED_LISTENERS") ?? "";
    assert.match(advertised, new RegExp(`//127\\.0\\.0\\.1:${published.published}(,|$)`));
    assert.match(kafkaProperty(kafka, "listeners") ?? "", new RegExp(`:${published.target}(,|$)`));
  });
});

void describe("deploy/docker/Dockerfile", () => {
  const stages = parseDockerfile(readProjectFile(dockerfilePath));
  const stageNames = new Set(stages.map((stage) => stage.name));
  const runtime = stages.at(-1);

  void test(`every base image is a Node LTS line ≥ ${nodeMajorMin}, pinned to a release`, () => {
    const bases = stages.filter((stage) => !stageNames.has(stage.image));
    assert.ok(bases.length > 0);
    for (const { image } of bases) {
      const major = Number(/^(?:docker\.io\/)?(?:library\/)?node:(\d+)/.exec(image)?.[1]);
      assert.match(image, pinnedImage, `${image} is not pinned to a release`);
      // Even majors are the LTS lines.
      assert.ok(
        major >= nodeMajorMin && major % 2 === 0,
        `${image} is not a Node LTS ≥ ${nodeMajorMin}`,
      );
    }
  });

  void test("builds with npm ci and npm run build, and prunes dev dependencies", () => {
    const runs = stages.flatMap((stage) =>
      stage.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args),
    );
    const all = runs.join("\n");
    for (const step of ["npm ci", "npm run build", "npm prune --omit=dev"]) {
      assert.ok(all.includes(step), `no RUN does ${step}`);
    }
    assert.ok(stages.length >= 2, "multi-stage: the runtime image holds no build tools");
  });

  void test("the runtime stage runs as non-root, exposes a port and checks /readyz", () => {
    assert.ok(runtime !== undefined);
    const last = (keyword: string) =>
      runtime.instructions.filter((i) => i.keyword === keyword).at(-1)?.args;
    const user = last("USER");
    assert.ok(user !== undefined, "the runtime stage sets USER");
    assert.ok(!/^(root|0)(:|$)/.test(user), `runs as ${user}`);
    assert.match(last("EXPOSE") ?? "", /^\d+/);
    assert.match(last("HEALTHCHECK") ?? "", /CMD/);
    const text = runtime.instructions.map((i) => `${i.keyword} ${i.args}`).join("\n");
    assert.match(text, /\/readyz/);
    assert.match(last("CMD") ?? "", /dist\/coordinator\/cli\/main\.js/);
  });

  void test(".dockerignore keeps node_modules, dist, .local and .git out of the build", () => {
    const ignored = readProjectFile(".dockerignore")
      .split(/\r?\n/)
      .map((line) =>
        line
          .trim()
          .replace(/^\*\*\//, "")
          .replace(/\/$/, ""),
      );
    for (const entry of ["node_modules", "dist", ".local", ".git"]) {
      assert.ok(ignored.includes(entry), `.dockerignore lacks ${entry}`);
    }
  });
});
