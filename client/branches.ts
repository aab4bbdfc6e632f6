/**
 * Typed builders for branch bodies and their parts, so that a service writes
 * `redisOps("redis-main", [redis.incrby("{acct}:7", 10)], [redis.exists("{acct}:7")])`
 * and the compiler checks the shape the API validates.
 */
import type {
  KafkaBranch,
  KafkaMessage,
  PgServicePreparedBranch,
  PgStatementsBranch,
  RedisBranch,
  RedisOp,
  RedisPrecondition,
  SqlParam,
  Statement,
} from "./wire.js";

export function pgStatements(
  participant: string,
  statements: readonly Statement[],
): PgStatementsBranch {
  return { participant, statements: [...statements] };
}

export function pgServicePrepared(participant: string): PgServicePreparedBranch {
  return { participant, servicePrepared: true };
}

export function redisOps(
  participant: string,
  ops: readonly RedisOp[],
  preconditions: readonly RedisPrecondition[] = [],
): RedisBranch {
  return {
    participant,
    ops: [...ops],
    ...(preconditions.length > 0 ? { preconditions: [...preconditions] } : {}),
  };
}

export function kafkaMessages(participant: string, messages: readonly KafkaMessage[]): KafkaBranch {
  return { participant, messages: [...messages] };
}

/** One SQL statement; `expectRows` makes the branch vote no unless exactly that many rows. */
export function sql(
  text: string,
  params: readonly SqlParam[] = [],
  options: { readonly expectRows?: number } = {},
): Statement {
  return {
    sql: text,
    ...(params.length > 0 ? { params: [...params] } : {}),
    ...(options.expectRows === undefined ? {} : { expectRows: options.expectRows }),
  };
}

/** Redis operations and preconditions. */
export const redis = {
  set(key: string, value: string, options: { readonly ttlMs?: number } = {}): RedisOp {
    return {
      op: "set",
      key,
      value,
      ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
    };
  },
  del: (key: string): RedisOp => ({ op: "del", key }),
  incrby: (key: string, by: number): RedisOp => ({ op: "incrby", key, by }),
  hset: (key: string, field: string, value: string): RedisOp => ({ op: "hset", key, field, value }),
  hdel: (key: string, field: string): RedisOp => ({ op: "hdel", key, field }),
  sadd: (key: string, ...values: string[]): RedisOp => ({ op: "sadd", key, values }),
  srem: (key: string, ...values: string[]): RedisOp => ({ op: "srem", key, values }),
  lpush: (key: string, ...values: string[]): RedisOp => ({ op: "lpush", key, values }),
  rpush: (key: string, ...values: string[]): RedisOp => ({ op: "rpush", key, values }),
  equals: (key: string, value: string): RedisPrecondition => ({ key, equals: value }),
  absent: (key: string): RedisPrecondition => ({ key, absent: true }),
  exists: (key: string): RedisPrecondition => ({ key, exists: true }),
} as const;

/** One Kafka message. */
export function message(
  topic: string,
  value: string,
  options: Omit<KafkaMessage, "topic" | "value"> = {},
): KafkaMessage {
  return { topic, value, ...options };
}
