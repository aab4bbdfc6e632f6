/**
 * Readers for the deployment files that compose.test.ts compares: docker-compose.yml, the
 * deploy/local scripts and the coordinator's Dockerfile. Each reader answers a value or
 * undefined, never a guess, so that a missing setting shows up as a drift.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { z } from "zod";

export const projectDir = fileURLToPath(new URL("../../../", import.meta.url));

export function readProjectFile(path: string): string {
  return readFileSync(projectDir + path, "utf8");
}

const stringList = z.union([z.string(), z.array(z.union([z.string(), z.number()]))]);
const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

const portSchema = z.union([
  z.string(),
  z.number(),
  z.looseObject({
    target: z.union([z.number(), z.string()]),
    published: z.union([z.number(), z.string()]).optional(),
    host_ip: z.string().optional(),
  }),
]);

const serviceSchema = z.looseObject({
  image: z.string().optional(),
  build: z
    .union([
      z.string(),
      z.looseObject({ context: z.string().optional(), dockerfile: z.string().optional() }),
    ])
    .optional(),
  command: stringList.optional(),
  environment: z.union([z.record(z.string(), scalar), z.array(z.string())]).optional(),
  ports: z.array(portSchema).optional(),
  volumes: z.array(z.union([z.string(), z.looseObject({})])).optional(),
  healthcheck: z.looseObject({ test: stringList.optional() }).optional(),
  depends_on: z
    .union([
      z.array(z.string()),
      z.record(z.string(), z.looseObject({ condition: z.string().optional() })),
    ])
    .optional(),
});

const composeSchema = z.looseObject({ services: z.record(z.string(), serviceSchema) });

export type ComposeService = z.infer<typeof serviceSchema>;
export type Compose = z.infer<typeof composeSchema>;

/** The file as compose reads it: YAML merge keys (`<<: *anchor`) resolved. */
export function parseComposeDocument(text: string): unknown {
  return parse(text, { merge: true });
}

export function parseCompose(text: string): Compose {
  return composeSchema.parse(parseComposeDocument(text));
}

/**
 * Resolves `${NAME:-default}` and `${NAME-default}` to their defaults, and `${NAME}` to "": the
 * file is compared as it runs with no variables set, whatever this machine's environment holds.
 */
export function withDefaults(value: string): string {
  return value.replace(/\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}/g, (_, fallback?: string) =>
    withDefaults(fallback ?? ""),
  );
}

export function service(compose: Compose, name: string): ComposeService | undefined {
  return compose.services[name];
}

export function commandWords(svc: ComposeService | undefined): string[] {
  const command = svc?.command;
  if (command === undefined) return [];
  if (typeof command === "string") return command.trim().split(/\s+/).map(withDefaults);
  return command.map((word) => withDefaults(String(word)));
}

/** The environment as a map, values as strings with their defaults applied. */
export function environment(svc: ComposeService | undefined): Map<string, string> {
  const env = new Map<string, string>();
  const source = svc?.environment;
  if (source === undefined) return env;
  if (Array.isArray(source)) {
    for (const entry of source) {
      const at = entry.indexOf("=");
      if (at > 0) env.set(entry.slice(0, at), withDefaults(entry.slice(at + 1)));
    }
  } else {
    for (const [name, value] of Object.entries(source)) {
      if (value !== null) env.set(name, withDefaults(String(value)));
    }
  }
  return env;
}

/** `-c name=value` options of a postgres command line. */
export function postgresOption(svc: ComposeService | undefined, name: string): string | undefined {
  const words = commandWords(svc);
  for (let i = 0; i + 1 < words.length; i++) {
    const option = words[i + 1] ?? "";
    if (words[i] === "-c" && option.startsWith(`${name}=`)) return option.slice(name.length + 1);
  }
  return undefined;
}

/** `--name=value` options of an etcd command line. */
export function etcdFlag(svc: ComposeService | undefined, name: string): string | undefined {
  const prefix = `--${name}=`;
  return commandWords(svc)
    .find((word) => word.startsWith(prefix))
    ?.slice(prefix.length);
}

/** `--name value` options of a redis-server command line. */
export function redisOption(svc: ComposeService | undefined, name: string): string | undefined {
  const words = commandWords(svc);
  const at = words.indexOf(`--${name}`);
  return at >= 0 ? words[at + 1] : undefined;
}

/**
 * The broker property an apache/kafka image makes of its KAFKA_* variables: the prefix dropped,
 * lower case, `___` → `-`, `__` → `_`, `_` → `.`.
 */
export function kafkaPropertyOfEnv(name: string): string | undefined {
  if (!name.startsWith("KAFKA_")) return undefined;
  return name
    .slice("KAFKA_".length)
    .toLowerCase()
    .split("___")
    .map((dashed) =>
      dashed
        .split("__")
        .map((part) => part.replaceAll("_", "."))
        .join("_"),
    )
    .join("-");
}

export function kafkaProperty(svc: ComposeService | undefined, name: string): string | undefined {
  for (const [variable, value] of environment(svc)) {
    if (kafkaPropertyOfEnv(variable) === name) return value;
  }
  return undefined;
}

export interface PublishedPort {
  service: string;
  hostIp: string | undefined;
  published: string | undefined;
  target: string;
}

/** Every port of every service, short (`[ip:][published:]target[/proto]`) or long syntax. */
export function publishedPorts(compose: Compose): PublishedPort[] {
  const ports: PublishedPort[] = [];
  for (const [name, svc] of Object.entries(compose.services)) {
    for (const port of svc.ports ?? []) {
      if (typeof port === "object") {
        ports.push({
          service: name,
          hostIp: port.host_ip,
          published:
            port.published === undefined ? undefined : withDefaults(String(port.published)),
          target: String(port.target),
        });
        continue;
      }
      const parts = withDefaults(String(port))
        .replace(/\/\w+$/, "")
        .split(":");
      const target = parts.pop() ?? "";
      const published = parts.pop();
      const hostIp = parts.length > 0 ? parts.join(":") : undefined;
      ports.push({ service: name, hostIp, published, target });
    }
  }
  return ports;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The value of a `name = value` line (postgresql.conf and Java properties). */
export function assignedValue(text: string, name: string): string | undefined {
  const match = new RegExp(`^\\s*${escapeRegExp(name)}\\s*=\\s*(.*?)\\s*$`, "m").exec(text);
  return match?.[1] === undefined ? undefined : unquote(match[1]);
}

/** The value of a `name value` line (redis.conf). */
export function spacedValue(text: string, name: string): string | undefined {
  const match = new RegExp(`^\\s*${escapeRegExp(name)}[ \\t]+(.*?)\\s*$`, "m").exec(text);
  return match?.[1] === undefined ? undefined : unquote(match[1]);
}

/** The default of a `NAME="${NAME:-default}"` line of a shell script. */
export function shellDefault(text: string, name: string): string | undefined {
  const n = escapeRegExp(name);
  return new RegExp(`${n}="?\\$\\{${n}:-([^}]*)\\}`).exec(text)?.[1];
}

function unquote(value: string): string {
  return /^(["']).*\1$/.test(value) ? value.slice(1, -1) : value;
}

export interface DockerStage {
  image: string;
  name: string | undefined;
  /** Instructions of the stage, continuation lines joined, FROM excluded. */
  instructions: { keyword: string; args: string }[];
}

export function parseDockerfile(text: string): DockerStage[] {
  const lines = text
    .replace(/\\\r?\n/g, " ")
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  const stages: DockerStage[] = [];
  for (const line of lines) {
    const keyword = (/^\S+/.exec(line)?.[0] ?? "").toUpperCase();
    const args = line.slice(keyword.length).trim();
    if (keyword === "FROM") {
      const from = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/i.exec(args);
      stages.push({ image: from?.[1] ?? "", name: from?.[2], instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword, args });
    }
  }
  return stages;
}

export interface BindMount {
  service: string;
  /** Relative to the project directory, as compose resolves `./…`. */
  source: string;
  target: string;
  readOnly: boolean;
}

/** The bind mounts (`./host/path:/target[:ro]`) of every service; named volumes are skipped. */
export function bindMounts(compose: Compose): BindMount[] {
  const mounts: BindMount[] = [];
  for (const [name, svc] of Object.entries(compose.services)) {
    for (const volume of svc.volumes ?? []) {
      if (typeof volume !== "string") continue;
      const [source = "", target = "", mode] = withDefaults(volume).split(":");
      if (!source.startsWith("./") && !source.startsWith("/")) continue;
      mounts.push({ service: name, source, target, readOnly: mode === "ro" });
    }
  }
  return mounts;
}

/** Named volumes mounted by a service, by target (`verdict-data:/var/lib/verdict`). */
export function namedVolumeTargets(svc: ComposeService | undefined): Map<string, string> {
  const targets = new Map<string, string>();
  for (const volume of svc?.volumes ?? []) {
    if (typeof volume !== "string") continue;
    const [source = "", target = ""] = volume.split(":");
    if (!source.startsWith(".") && !source.startsWith("/")) targets.set(target, source);
  }
  return targets;
}

/**
 * The raw `environment` entries of a service, before any default is applied: a required
 * variable reads `${NAME:?message}`, an optional one `${NAME:-default}`.
 */
export function rawEnvironment(svc: ComposeService | undefined): Map<string, string> {
  const env = new Map<string, string>();
  const source = svc?.environment;
  if (source === undefined || Array.isArray(source)) return env;
  for (const [name, value] of Object.entries(source)) env.set(name, String(value));
  return env;
}

/**
 * An image pinned to a release: a digest, or a tag holding a whole version (`15.14`, `v3.6.16`,
 * `24.11.1-bookworm-slim`), never `latest` or a bare major line (`24-bookworm-slim`).
 * PostgreSQL's versions have two parts (15.14 is a release), the others three.
 */
export const pinnedImage =
  /(@sha256:[0-9a-f]{64}$)|(^(?:[\w.-]+\/)*postgres:\d+\.\d+(-[\w.-]+)?$)|(:v?\d+\.\d+\.\d+(-[\w.-]+)?$)/;
