/**
 * What a Redis branch carries: the one branch-work type's `ops` variant (shared/branch-work.ts).
 * The API validated it at enlist under the node's (lower) limits; the participant re-validates
 * defensively at prepare with the ceilings, and refuses what its staging codec cannot carry:
 * lone UTF-16 surrogates (not characters, so not encodable as UTF-8 for the staged program).
 */
import { fixedLimits } from "../../coordinator/config/limits.js";
import { workAtCeilings, type RedisWork } from "../../shared/branch-work.js";

/** The staged program is one script argument; Redis allows 512 MiB, we stay far below. */
export const stagedBytesMax = fixedLimits.redisStagedBytesMax;

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Every string the work holds (keys, fields, values), for the well-formedness check. */
function* stringsOf(work: RedisWork): Generator<string> {
  for (const op of work.ops) {
    yield op.key;
    if ("field" in op) yield op.field;
    if ("value" in op) yield op.value;
    if ("values" in op) yield* op.values;
  }
  for (const p of work.preconditions) {
    yield p.key;
    if ("equals" in p) yield p.equals;
  }
}

export const redisPayloadSchema = workAtCeilings.opsWork.superRefine((work, ctx) => {
  for (const s of stringsOf(work)) {
    if (!loneSurrogate.test(s)) continue;
    ctx.addIssue({ code: "custom", message: "a key or value has a lone UTF-16 surrogate" });
    return;
  }
});

export type RedisPayload = RedisWork;
