/**
 * What a Redis branch carries, and its schema. The API validates enlist bodies with its own
 * (configurable, lower) limits; this schema re-validates defensively at prepare with the
 * ceilings below, and refuses what the staging codec cannot carry (lone UTF-16 surrogates).
 */
import { z } from "zod";
import type { RedisOp, RedisPrecondition } from "../../coordinator/api/contract/schemas.js";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Ceilings per branch; the API's own limits (`apiLimitsSchema`) never exceed them. */
export const redisPayloadLimits = {
  opsMax: 10_000,
  preconditionsMax: 10_000,
  valuesPerOpMax: 100_000,
  keyBytesMax: 64 * KiB,
  valueBytesMax: 64 * MiB,
  /** The staged program is one script argument; Redis allows 512 MiB, we stay far below. */
  stagedBytesMax: 256 * MiB,
} as const;

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const boundedString = (bytesMax: number, what: string) =>
  z
    .string()
    .refine((s) => !loneSurrogate.test(s), {
      message: `a ${what} is well-formed UTF-16 (no lone surrogates)`,
    })
    .refine((s) => s.length <= bytesMax && Buffer.byteLength(s, "utf8") <= bytesMax, {
      message: `a ${what} is at most ${bytesMax} bytes`,
    });

const key = boundedString(redisPayloadLimits.keyBytesMax, "key").min(1);
const value = boundedString(redisPayloadLimits.valueBytesMax, "value");
const values = z.array(value).min(1).max(redisPayloadLimits.valuesPerOpMax);

export const redisOpSchema = z.discriminatedUnion("op", [
  z.strictObject({
    op: z.literal("set"),
    key,
    value,
    ttlMs: z.number().int().min(1).optional(),
  }),
  z.strictObject({ op: z.literal("del"), key }),
  z.strictObject({ op: z.literal("incrby"), key, by: z.number().int() }),
  z.strictObject({ op: z.literal("hset"), key, field: key, value }),
  z.strictObject({ op: z.literal("hdel"), key, field: key }),
  z.strictObject({ op: z.literal("sadd"), key, values }),
  z.strictObject({ op: z.literal("srem"), key, values }),
  z.strictObject({ op: z.literal("lpush"), key, values }),
  z.strictObject({ op: z.literal("rpush"), key, values }),
]);

export const redisPreconditionSchema = z.union([
  z.strictObject({ key, equals: value }),
  z.strictObject({ key, absent: z.literal(true) }),
  z.strictObject({ key, exists: z.literal(true) }),
]);

export const redisPayloadSchema = z.strictObject({
  kind: z.literal("ops"),
  ops: z.array(redisOpSchema).min(1).max(redisPayloadLimits.opsMax),
  preconditions: z.array(redisPreconditionSchema).max(redisPayloadLimits.preconditionsMax),
});

export type RedisPayload = z.infer<typeof redisPayloadSchema>;

// The API's types and ours must describe the same shapes: a drift fails to compile here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
export type _OpsAgreeWithApi = Assert<Same<z.input<typeof redisOpSchema>, RedisOp>>;
export type _PreconditionsAgreeWithApi = Assert<
  Same<z.input<typeof redisPreconditionSchema>, RedisPrecondition>
>;
