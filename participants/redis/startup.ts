/**
 * What `start` checks before a participant takes any branch: the server is a standalone
 * primary, a yes vote survives a crash (appendonly yes, appendfsync always) and no lock or
 * staged branch can be evicted (maxmemory-policy noeviction); then the namespace is
 * registered to this cluster (G6). Transient failures are rethrown as they are; the caller
 * turns them into RedisUnavailableError.
 */
import type { Redis } from "ioredis";
import type { ParticipantLogger } from "../common/logger.js";
import { messageOf } from "../common/errors.js";
import type { RedisParticipantConfig } from "./config.js";
import { ClusterMismatchError, isTransient, replyCodeOf, UnsafeServerError } from "./errors.js";
import type { NamespaceKeys } from "./keys.js";

/** The settings a yes vote depends on, with the value each must have and why. */
const requiredSettings = [
  {
    name: "appendonly",
    value: "yes",
    why: "without the append-only file a restart loses staged branches",
  },
  {
    name: "appendfsync",
    value: "always",
    why: "anything weaker acknowledges a prepare before it is on disk (WAITAOF needs Redis 7.2)",
  },
  {
    name: "maxmemory-policy",
    value: "noeviction",
    why: "eviction could drop a lock, a staged branch or an outcome record",
  },
] as const;

/**
 * Refuses a replica or a Redis Cluster node outright; returns the weakening settings that
 * `unsafeServer: "warn"` allowed (empty when the server is safe). Throws UnsafeServerError
 * naming every unsafe setting under `unsafeServer: "refuse"`.
 */
export async function checkServer(
  redis: Redis,
  config: RedisParticipantConfig,
  logger: ParticipantLogger,
): Promise<string[]> {
  const ids = { participant: config.name };
  const info = await redis.info("server").then(async (s) => s + (await redis.info("replication")));
  const field = (name: string) => new RegExp(`^${name}:(.*)$`, "m").exec(info)?.[1]?.trim();
  const unusable: string[] = [];
  const mode = field("redis_mode");
  if (mode !== undefined && mode !== "standalone") {
    unusable.push(`redis_mode is ${mode}: v1 supports a standalone primary only`);
  }
  const role = field("role");
  if (role !== "master") unusable.push(`role is ${role ?? "unknown"}: point it at the primary`);
  if (unusable.length > 0) {
    throw new UnsafeServerError(
      `participant ${config.name}: Redis at ${redactedUrl(config.url)} cannot hold branches: ${unusable.join("; ")}`,
      ids,
      unusable,
    );
  }

  const problems = await settingProblems(redis);
  if (problems.length === 0) return [];
  const message =
    `participant ${config.name}: Redis at ${redactedUrl(config.url)} is unsafe for two-phase commit: ` +
    problems.join("; ");
  if (config.unsafeServer === "refuse") {
    throw new UnsafeServerError(
      `${message}. Fix the server, or set unsafeServer: "warn" to accept weaker yes votes.`,
      ids,
      problems,
    );
  }
  logger.error(
    { participant: config.name, problems },
    `${message}. Accepted because unsafeServer is "warn": a yes vote may not survive a crash.`,
  );
  return problems;
}

async function settingProblems(redis: Redis): Promise<string[]> {
  const problems: string[] = [];
  for (const setting of requiredSettings) {
    let reply: unknown;
    try {
      reply = await redis.config("GET", setting.name);
    } catch (err) {
      if (replyCodeOf(err) === undefined || isTransient(err)) throw err;
      return [
        `CONFIG GET failed (${messageOf(err)}): CONFIG is renamed or disabled (rename-command) or ` +
          `not permitted to this user, so ${requiredSettings.map((s) => s.name).join(", ")} cannot be ` +
          `verified; check them by hand (${requiredSettings.map((s) => `${s.name} ${s.value}`).join(", ")})`,
      ];
    }
    const value: unknown = Array.isArray(reply) ? reply[1] : undefined;
    if (value !== setting.value) {
      problems.push(
        `${setting.name} is ${typeof value === "string" ? value : "unset"}, must be ${setting.value} (${setting.why})`,
      );
    }
  }
  return problems;
}

/** Registers `clusterId` as the owner of the namespace; refuses another cluster's namespace. */
export async function registerCluster(
  redis: Redis,
  keys: NamespaceKeys,
  config: RedisParticipantConfig,
  clusterId: string,
): Promise<void> {
  await redis.set(keys.cluster, clusterId, "NX");
  const registered = await redis.get(keys.cluster);
  if (registered === null)
    throw new Error("assertion: cluster registration is missing after SET NX");
  if (registered !== clusterId) {
    throw new ClusterMismatchError(
      { participant: config.name },
      config.namespace,
      clusterId,
      registered,
    );
  }
}

/** The url without its password, for messages. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparsable url)";
  }
}
