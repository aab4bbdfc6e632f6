/** Reads and validates the configuration file; every failure names the file and the field. */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { logConfigProblems } from "../cluster/sizes.js";
import { etcdSecurityProblems } from "../cluster/etcd-security.js";
import { configSchema, type Config } from "./schema.js";
import { isLoopbackHost, weakSecretProblem } from "./secrets.js";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

export async function loadConfig(path: string, env = process.env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read configuration ${path}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new ConfigError(`configuration ${path} is not valid YAML: ${(e as Error).message}`);
  }
  return validateConfig(substituteEnv(raw, env, path), path, env);
}

/** `${NAME}`: an environment variable's name, upper case, digits and `_`. */
const envReference = /\$\{([A-Z_][A-Z0-9_]*)\}/g;

/**
 * Replaces every `${NAME}` inside the file's string values with the variable's value, so that
 * secrets (a password, a connection string) stay out of the file. Values only, after parsing:
 * a value can never change the file's structure. An unset variable refuses the start, naming
 * the variable and the field: there is no default.
 */
export function substituteEnv(raw: unknown, env: NodeJS.ProcessEnv, source: string): unknown {
  const missing: string[] = [];
  const walk = (value: unknown, path: string): unknown => {
    if (typeof value === "string") {
      return value.replace(envReference, (_, name: string) => {
        const found = env[name];
        if (found === undefined) missing.push(`${path}: environment variable ${name} is unset`);
        return found ?? "";
      });
    }
    if (Array.isArray(value)) return value.map((v, i) => walk(v, `${path}[${i}]`));
    if (typeof value === "object" && value !== null) {
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, walk(v, path === "" ? k : `${path}.${k}`)]),
      );
    }
    return value;
  };
  const substituted = walk(raw, "");
  if (missing.length > 0) {
    throw new ConfigError(`configuration ${source} is invalid:\n  - ${missing.join("\n  - ")}`);
  }
  return substituted;
}

export function validateConfig(raw: unknown, source: string, env = process.env): Config {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(`configuration ${source} is invalid:\n${z.prettifyError(parsed.error)}`);
  }
  const config = parsed.data;
  const problems: string[] = [];
  if (config.profile === "production" && config.tokens.length === 0) {
    problems.push("no tokens configured: a production node refuses to start without credentials");
  }
  const names = new Set<string>();
  for (const p of config.participants) {
    if (names.has(p.name)) problems.push(`participant ${p.name} is configured twice`);
    names.add(p.name);
    if (config.profile === "production" && p.kind === "postgres" && !hasStatementRoles(p)) {
      problems.push(
        `participant ${p.name}: a production node refuses to run client statements as Verdict's own ` +
          "role; configure statementRoles, or set unsafeSingleRole: true (docs/security.md)",
      );
    }
  }
  const ids = new Set<string>();
  const secrets = new Map<string, string>();
  const checkSecret = (who: string, inline?: string, envName?: string, sha256?: string): void => {
    const given = [inline, envName, sha256].filter((v) => v !== undefined).length;
    if (given !== 1) {
      problems.push(
        `${who}: give exactly one of secret or secretEnv${sha256 === undefined && who.startsWith("token") ? " or secretSha256" : ""}`,
      );
      return;
    }
    if (sha256 !== undefined) {
      // Only the digest is known: its strength cannot be checked (docs/security.md, "Roles").
      const other = secrets.get(sha256);
      if (other !== undefined) problems.push(`${who}: same secret as ${other}`);
      secrets.set(sha256, who);
      return;
    }
    const from = envName === undefined ? "secret" : `environment variable ${envName}`;
    const secret = inline ?? env[envName ?? ""];
    if (secret === undefined) return void problems.push(`${who}: ${from} is unset`);
    const weak = weakSecretProblem(secret);
    if (weak !== undefined) return void problems.push(`${who}: ${from} is weak: ${weak}`);
    // One secret for two tokens would make them one principal with two names (or roles).
    const digest = sha256Hex(secret);
    const other = secrets.get(digest);
    if (other !== undefined) problems.push(`${who}: same secret as ${other}`);
    secrets.set(digest, who);
  };
  for (const t of config.tokens) {
    if (ids.has(t.id)) problems.push(`token id ${t.id} is configured twice`);
    ids.add(t.id);
    checkSecret(`token ${t.id}`, t.secret, t.secretEnv, t.secretSha256);
    for (const name of t.participants ?? []) {
      if (!names.has(name)) problems.push(`token ${t.id} is scoped to unknown participant ${name}`);
    }
    if (t.role !== "client" && t.participants)
      problems.push(`token ${t.id}: only client tokens are scoped to participants`);
  }
  const m = config.metrics;
  if (m.token !== undefined || m.tokenEnv !== undefined) {
    checkSecret("metrics token", m.token, m.tokenEnv);
  }
  if (m.listen !== undefined && splitHostPort(m.listen).port > 65535) {
    problems.push(`metrics.listen ${m.listen}: the port is over 65535`);
  }
  if (config.profile === "local-demo") {
    // The demo's tokens are written to a file beside it: it must not be reachable from outside.
    for (const [field, host] of [
      ["node.host", config.node.host],
      ["metrics.listen", m.listen === undefined ? undefined : splitHostPort(m.listen).host],
    ] as const) {
      if (host !== undefined && !isLoopbackHost(host)) {
        problems.push(`${field} ${host}: the local-demo profile listens on loopback only`);
      }
    }
  }
  problems.push(...logConfigProblems(config.log, config.limits.payloadBytesPerTransactionMax));
  problems.push(...transportProblems(config));
  problems.push(...etcdSecurityProblems(config.log));
  if (config.protocol.phase2BackoffBaseMs > config.protocol.phase2BackoffMaxMs) {
    problems.push("protocol.phase2BackoffBaseMs must not exceed protocol.phase2BackoffMaxMs");
  }
  if (problems.length > 0) {
    throw new ConfigError(`configuration ${source} is invalid:\n  - ${problems.join("\n  - ")}`);
  }
  return config;
}

/** `node.tls` and `cluster` (docs/tls.md): what must go together. */
function transportProblems(config: Config): string[] {
  const problems: string[] = [];
  const tls = config.node.tls;
  if (tls !== undefined && tls.clientCertificate !== "off" && tls.caFile === undefined) {
    problems.push(`node.tls.clientCertificate ${tls.clientCertificate} needs node.tls.caFile`);
  }
  const advertised = config.node.advertiseUrl;
  if (tls !== undefined && advertised !== undefined && !advertised.startsWith("https:")) {
    problems.push(`node.advertiseUrl ${advertised}: the node serves HTTPS (node.tls)`);
  }
  if (config.cluster.forwardSecretFile !== undefined && config.log.kind !== "etcd") {
    problems.push("cluster.forwardSecretFile: only nodes of an etcd cluster forward calls");
  }
  return problems;
}

/** A PostgreSQL participant with statement roles, or an explicit single-role acknowledgement. */
function hasStatementRoles(p: Record<string, unknown>): boolean {
  return p.statementRoles !== undefined || p.unsafeSingleRole === true;
}

/** The secret of a token, from the file or the environment (validated by validateConfig). */
/** SHA-256 of a secret in hex: the form `secretSha256` takes. */
export function sha256Hex(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

export function tokenSecret(
  t: { readonly secret?: string; readonly secretEnv?: string },
  env = process.env,
): string {
  return t.secret ?? env[t.secretEnv ?? ""] ?? "";
}

/** The metrics token, when one is configured (validated by validateConfig). */
export function metricsToken(m: Config["metrics"], env = process.env): string | undefined {
  if (m.token === undefined && m.tokenEnv === undefined) return undefined;
  return tokenSecret({ secret: m.token, secretEnv: m.tokenEnv }, env);
}

/** `host:port` (IPv6 in brackets) → its parts; the schema checked the form. */
export function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(":");
  return {
    host: listen.slice(0, i).replace(/^\[(.*)\]$/, "$1"),
    port: Number(listen.slice(i + 1)),
  };
}
