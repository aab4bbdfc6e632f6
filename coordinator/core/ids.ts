/** Branded ids and indices, so that one cannot be passed where another is meant. */
import type { BranchId } from "../../participants/participant.js";

export type { BranchId };
export type Xid = string & { readonly __brand: "Xid" };
export type ClusterId = string & { readonly __brand: "ClusterId" };
export type Term = number & { readonly __brand: "Term" };
export type LogIndex = number & { readonly __brand: "LogIndex" };
/** Branch number within a transaction, from 1. */
export type BranchNo = number & { readonly __brand: "BranchNo" };

const xidTimeChars = 9;

/**
 * A new xid: its begin time (ms, base 36, fixed width) then random hex. The time lets a
 * leader tell an xid that cannot have been forgotten yet (presumed abort) from one that may
 * have been (unknown). `randomHex` is injected so the core draws no randomness itself.
 */
export function newXid(nowMs: number, randomHex: string): Xid {
  return `${Math.floor(nowMs).toString(36).padStart(xidTimeChars, "0")}${randomHex}` as Xid;
}

export function xidBeganAtMs(xid: Xid): number | undefined {
  const head = xid.slice(0, xidTimeChars);
  if (!/^[0-9a-z]{9}$/.test(head)) return undefined;
  const ms = parseInt(head, 36);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

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
