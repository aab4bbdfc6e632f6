/** Branded ids and indices, so that one cannot be passed where another is meant. */
import type { BranchId } from "../../participants/participant.js";

export type { BranchId };
export type Xid = string & { readonly __brand: "Xid" };
export type ClusterId = string & { readonly __brand: "ClusterId" };
export type Term = number & { readonly __brand: "Term" };
export type LogIndex = number & { readonly __brand: "LogIndex" };
/** Branch number within a transaction, from 1. */
export type BranchNo = number & { readonly __brand: "BranchNo" };

/** `<clusterId>:<xid>:<n>`: recovery matches the `<clusterId>:` prefix exactly (G6). */
export function branchIdOf(clusterId: ClusterId, xid: Xid, n: BranchNo): BranchId {
  return `${clusterId}:${xid}:${n}` as BranchId;
}

export function branchPrefix(clusterId: ClusterId): string {
  return `${clusterId}:`;
}

/** Splits a branch id of this cluster back into xid and branch number; undefined if not ours. */
export function parseBranchId(
  clusterId: ClusterId,
  branchId: string,
): { xid: Xid; n: BranchNo } | undefined {
  const prefix = branchPrefix(clusterId);
  if (!branchId.startsWith(prefix)) return undefined;
  const rest = branchId.slice(prefix.length);
  const sep = rest.lastIndexOf(":");
  if (sep <= 0) return undefined;
  const n = Number(rest.slice(sep + 1));
  if (!Number.isSafeInteger(n) || n < 1) return undefined;
  return { xid: rest.slice(0, sep) as Xid, n: n as BranchNo };
}
