/**
 * Merging a second enlist into the branch a participant already has (one branch per
 * participant per transaction: two branches on one database would deadlock each other).
 * Payloads are participant-specific objects whose work lives in arrays (statements, ops,
 * preconditions, messages): merging appends them in order.
 */
export type MergeResult = { ok: true; payload: unknown } | { ok: false; why: string };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function mergePayloads(first: unknown, second: unknown): MergeResult {
  if (!isRecord(first) || !isRecord(second)) return { ok: false, why: "payloads are not objects" };
  if (first.kind !== second.kind) {
    return {
      ok: false,
      why: `cannot add ${String(second.kind)} work to a ${String(first.kind)} branch`,
    };
  }
  const merged: Record<string, unknown> = { ...first };
  for (const [key, value] of Object.entries(second)) {
    const prior = first[key];
    if (Array.isArray(prior) && Array.isArray(value)) {
      merged[key] = [...(prior as unknown[]), ...(value as unknown[])];
    } else if (prior === undefined) merged[key] = value;
    else if (JSON.stringify(prior) !== JSON.stringify(value)) {
      return { ok: false, why: `field ${key} differs between the two enlists` };
    }
  }
  return { ok: true, payload: merged };
}
