/**
 * The Redis participant's own view of a branch: its staged program (the branch record),
 * the Verdict locks it holds on the program's keys, and its outcome record. Two read-only
 * round trips; the locks are read after the record, so a branch finished in between shows
 * its outcome with no locks, never locks without a program.
 */
import type { Redis } from "ioredis";
import type { BranchId } from "../participant.js";
import { clipText, inspectListMax, type RedisBranchView, type RedisStagedOp } from "../inspect.js";
import type { NamespaceKeys } from "./keys.js";
import { programKeys, type StagedOp, type StagedProgram } from "./program.js";

export async function inspectRedisBranch(
  redis: Redis,
  keys: NamespaceKeys,
  branchId: BranchId,
): Promise<RedisBranchView> {
  const [record, outcome] = await Promise.all([
    redis.hgetall(keys.branch(branchId)),
    redis.hgetall(keys.outcome(branchId)),
  ]);
  const program =
    record.program === undefined ? undefined : (JSON.parse(record.program) as StagedProgram);
  const lockKeys = program ? programKeys(program) : [];
  const holders = lockKeys.length === 0 ? [] : await redis.mget(lockKeys.map(lockKeyOf(keys)));
  const locksHeld = lockKeys.filter((_, i) => holders[i] === branchId);
  const recorded =
    outcome.outcome === undefined
      ? null
      : {
          outcome: outcome.outcome,
          prepared: outcome.prepared === "1",
          term: Number(outcome.term ?? 0),
          decidedAtMs: Number(outcome.decidedAtMs ?? 0),
          atMs: Number(outcome.atMs ?? 0),
        };
  return {
    kind: "redis",
    holds: program
      ? "prepared"
      : recorded?.outcome === "committed"
        ? "committed"
        : recorded?.outcome === "rolled-back"
          ? "rolled-back"
          : "absent",
    staged: program
      ? {
          preparedAtMs: Number(record.preparedAtMs ?? 0),
          preconditions: program.pre.length,
          ops: program.ops.length,
          firstOps: program.ops.slice(0, inspectListMax).map(describeOp),
        }
      : null,
    locksHeld: locksHeld.slice(0, inspectListMax).map(clipText),
    outcome: recorded,
  };
}

/** The lock key of a user key, as the Lua scripts name it (scripts.ts `lockKey`). */
function lockKeyOf(keys: NamespaceKeys): (key: string) => string {
  return (key) => `${keys.prefix}lock:${key}`;
}

function describeOp(op: StagedOp): RedisStagedOp {
  const detail =
    op.o === "set"
      ? op.v + (op.px === undefined ? "" : ` (ttl ${op.px} ms)`)
      : op.o === "del"
        ? ""
        : op.o === "incrby"
          ? op.by
          : op.o === "hset"
            ? `${op.f} = ${op.v}`
            : op.o === "hdel"
              ? op.f
              : op.vs.join(", ");
  return { op: op.o, key: clipText(op.k), detail: clipText(detail) };
}
