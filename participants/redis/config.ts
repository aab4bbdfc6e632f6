/**
 * Configuration of one Redis participant (one standalone Redis primary, one connection).
 * Validated once; every limit has a default and a ceiling.
 */
import { z } from "zod";
import { participantNameSchema, parseParticipantConfig } from "../common/config.js";
import { RedisConfigError } from "./errors.js";
import { tlsFilesSchema } from "../../shared/tls.js";

/** Namespaces become the `<namespace>:` prefix of every key Verdict writes. */
export const namespacePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export const unsafeServerPolicies = ["refuse", "warn"] as const;

export const redisParticipantConfigSchema = z.strictObject({
  /** Participant name used in the API (`"redis-main"`), logs and errors. */
  name: participantNameSchema,
  /**
   * `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). An ACL user and its
   * password go here; write the password as `${ENV_NAME}` to keep it out of the file.
   */
  url: z
    .string()
    .min(1)
    .max(2048)
    .regex(/^rediss?:\/\//, { message: "url starts with redis:// or rediss://" }),
  /** Prefix of Verdict's own keys (`<namespace>:…`); user keys inside it are refused. One cluster per namespace. */
  namespace: z.string().regex(namespacePattern).default("verdict"),
  connectTimeoutMs: z.number().int().min(100).max(60_000).default(5_000),
  /** Client-side bound on every command; a prepare is also cut short by its deadline. */
  commandTimeoutMs: z.number().int().min(50).max(600_000).default(10_000),
  /** Longest pause between reconnection attempts while the server is unreachable. */
  reconnectDelayMsMax: z.number().int().min(10).max(60_000).default(1_000),
  /** Staged (prepared) branches Verdict may hold at once in this namespace; more vote no. */
  inFlightMax: z.number().int().min(1).max(1_000_000).default(1_000),
  /**
   * What `start` does with a server whose settings weaken a yes vote (appendonly,
   * appendfsync, maxmemory-policy, or CONFIG unavailable): refuse it, or accept it
   * with a loud log line and a health warning.
   */
  unsafeServer: z.enum(unsafeServerPolicies).default("refuse"),
  /**
   * With a `rediss://` url (only): the CA the server's certificate must chain to (its name
   * is checked too), and a client certificate for `tls-auth-clients` (docs/tls-backends.md).
   */
  tls: tlsFilesSchema.optional(),
});

export type RedisParticipantConfigInput = z.input<typeof redisParticipantConfigSchema>;
export type RedisParticipantConfig = z.output<typeof redisParticipantConfigSchema>;

export function parseRedisParticipantConfig(input: unknown): RedisParticipantConfig {
  return parseParticipantConfig("redis", redisParticipantConfigSchema, input, RedisConfigError);
}
