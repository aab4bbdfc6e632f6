/** Reads and validates the configuration file; every failure names the file and the field. */
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { configSchema, type Config } from "./schema.js";

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
  for (const t of config.tokens) {
    if (ids.has(t.id)) problems.push(`token id ${t.id} is configured twice`);
    ids.add(t.id);
    if ((t.secret === undefined) === (t.secretEnv === undefined)) {
      problems.push(`token ${t.id}: give exactly one of secret or secretEnv`);
    } else if (t.secretEnv !== undefined && (env[t.secretEnv] ?? "").length < 16) {
      problems.push(
        `token ${t.id}: environment variable ${t.secretEnv} is unset or shorter than 16 characters`,
      );
    }
    for (const name of t.participants ?? []) {
      if (!names.has(name)) problems.push(`token ${t.id} is scoped to unknown participant ${name}`);
    }
    if (t.role === "admin" && t.participants)
      problems.push(`token ${t.id}: admin tokens are not scoped`);
  }
  if (config.protocol.phase2BackoffBaseMs > config.protocol.phase2BackoffMaxMs) {
    problems.push("protocol.phase2BackoffBaseMs must not exceed protocol.phase2BackoffMaxMs");
  }
  if (problems.length > 0) {
    throw new ConfigError(`configuration ${source} is invalid:\n  - ${problems.join("\n  - ")}`);
  }
  return config;
}

/** A PostgreSQL participant with statement roles, or an explicit single-role acknowledgement. */
function hasStatementRoles(p: Record<string, unknown>): boolean {
  return p.statementRoles !== undefined || p.unsafeSingleRole === true;
}

/** The secret of a token, from the file or the environment (validated by validateConfig). */
export function tokenSecret(t: Config["tokens"][number], env = process.env): string {
  return t.secret ?? env[t.secretEnv ?? ""] ?? "";
}
