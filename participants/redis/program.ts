/**
 * The staged program: a branch's preconditions and operations in the compact JSON form the
 * Lua scripts read (cjson). Prepare stores this exact string under the branch, so commit
 * applies what was checked, whatever payload a later call carries. Integers travel as
 * decimal strings: Lua numbers are doubles, and Redis parses the strings exactly.
 */
import type { RedisPayload } from "./payload.js";

export type StagedOp =
  | { readonly o: "set"; readonly k: string; readonly v: string; readonly px?: string }
  | { readonly o: "del"; readonly k: string }
  | { readonly o: "incrby"; readonly k: string; readonly by: string }
  | { readonly o: "hset"; readonly k: string; readonly f: string; readonly v: string }
  | { readonly o: "hdel"; readonly k: string; readonly f: string }
  | {
      readonly o: "sadd" | "srem" | "lpush" | "rpush";
      readonly k: string;
      readonly vs: readonly string[];
    };

export type StagedPrecondition =
  | { readonly k: string; readonly c: "equals"; readonly v: string }
  | { readonly k: string; readonly c: "absent" | "exists" };

export interface StagedProgram {
  readonly pre: readonly StagedPrecondition[];
  readonly ops: readonly StagedOp[];
}

export function stagedProgram(payload: RedisPayload): StagedProgram {
  const pre = payload.preconditions.map((p): StagedPrecondition => {
    if ("equals" in p) return { k: p.key, c: "equals", v: p.equals };
    return { k: p.key, c: "absent" in p ? "absent" : "exists" };
  });
  const ops = payload.ops.map((op): StagedOp => {
    switch (op.op) {
      case "set":
        return op.ttlMs === undefined
          ? { o: "set", k: op.key, v: op.value }
          : { o: "set", k: op.key, v: op.value, px: String(op.ttlMs) };
      case "del":
        return { o: "del", k: op.key };
      case "incrby":
        return { o: "incrby", k: op.key, by: String(op.by) };
      case "hset":
        return { o: "hset", k: op.key, f: op.field, v: op.value };
      case "hdel":
        return { o: "hdel", k: op.key, f: op.field };
      case "sadd":
      case "srem":
      case "lpush":
      case "rpush":
        return { o: op.op, k: op.key, vs: op.values };
      default:
        return assertNever(op);
    }
  });
  return { pre, ops };
}

/** Every key the program reads or writes, once each. */
export function programKeys(program: StagedProgram): string[] {
  return [...new Set([...program.pre.map((p) => p.k), ...program.ops.map((o) => o.k)])];
}

function assertNever(value: never): never {
  throw new Error(`assertion: unexpected ${JSON.stringify(value)}`);
}
