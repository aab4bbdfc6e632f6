/**
 * Shared set-up for the Redis participant tests: a unique namespace, cluster id and user-key
 * prefix per test file, a direct ioredis connection to read the truth, and a cleanup that
 * closes every participant and deletes every key the file made.
 */
import { Redis } from "ioredis";
import type { BranchId, BranchRef, Phase2Context } from "../../../participants/participant.js";
import type { RedisParticipantConfigInput } from "../../../participants/redis/config.js";
import {
  createRedisParticipant,
  type RedisParticipant,
} from "../../../participants/redis/participant.js";
import type { RedisPayload } from "../../../participants/redis/payload.js";
import { branchIds, madeParticipants, suffix } from "../../support/participant-helpers.js";
import { services } from "../../support/services.js";

export { suffix };

/** Far enough that no test runs into it. */
export const prepareCtx = () => ({ deadlineMs: Date.now() + 30_000 });
export const phase2Ctx: Phase2Context = { term: 3, decidedAtMs: Date.now() };

export type Op = RedisPayload["ops"][number];
export type Precondition = RedisPayload["preconditions"][number];

export function branch(
  branchId: BranchId,
  ops: Op[],
  preconditions: Precondition[] = [],
): BranchRef<RedisPayload> {
  return { branchId, payload: { kind: "ops", ops, preconditions } };
}

export interface Fixture {
  readonly run: string;
  readonly namespace: string;
  /** Contains `_` and `%` on purpose: recovery must match it exactly, never as a pattern. */
  readonly clusterId: string;
  readonly url: string;
  readonly direct: Redis;
  branchId(): BranchId;
  /** A user key unique to this run. */
  key(name: string): string;
  participant(overrides?: Partial<RedisParticipantConfigInput>): RedisParticipant;
  started(overrides?: Partial<RedisParticipantConfigInput>): Promise<RedisParticipant>;
  /** Verdict's own key `<namespace>:<rest>`. */
  internal(rest: string): string;
  cleanup(): Promise<void>;
}

export function createFixture(url: string = services.redisUrl): Fixture {
  const run = suffix();
  const namespace = `verdict-t-${run}`;
  const clusterId = `t_%${run}`;
  const userPrefix = `t-${run}:`;
  const direct = new Redis(url, { commandTimeout: 5_000, maxRetriesPerRequest: 1 });
  const made = madeParticipants(clusterId, (overrides: Partial<RedisParticipantConfigInput> = {}) =>
    createRedisParticipant({
      name: `redis-test-${run}`,
      url,
      namespace,
      connectTimeoutMs: 2_000,
      commandTimeoutMs: 2_000,
      ...overrides,
    }),
  );
  const fixture: Fixture = {
    run,
    namespace,
    clusterId,
    url,
    direct,
    branchId: branchIds(clusterId, run),
    key: (name) => `${userPrefix}${name}`,
    participant: made.participant,
    started: made.started,
    internal: (rest) => `${namespace}:${rest}`,
    async cleanup() {
      await made.closeAll();
      // Tests may scan; the participant never does. Bounded: a run makes few keys.
      for (const pattern of [`${namespace}:*`, `${userPrefix}*`]) {
        const made = await scanAll(direct, pattern);
        if (made.length > 0) await direct.del(...made);
      }
      direct.disconnect();
    },
  };
  return fixture;
}

async function scanAll(redis: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  for (let i = 0; i < 10_000; i++) {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    found.push(...keys);
    cursor = next;
    if (cursor === "0") return found;
  }
  throw new Error(`SCAN ${pattern} did not finish`);
}
