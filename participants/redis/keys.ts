/**
 * The layout of Verdict's own keys, all under `<namespace>:` (README.md lists their
 * lifetimes). None has a TTL: they live until Verdict forgets the branch. User keys inside
 * the namespace are refused at prepare, so a branch can never touch these.
 */
import type { BranchId } from "../participant.js";

export interface NamespaceKeys {
  /** `<namespace>:`; the Lua scripts derive lock keys from it. */
  readonly prefix: string;
  /** String: the one Verdict cluster id this namespace belongs to. */
  readonly cluster: string;
  /** Set of staged branch ids: what `recover` reads (never a key scan). */
  readonly prepared: string;
  /** Hash `{program, preparedAtMs}`: a staged branch, from prepare until commit or rollback. */
  branch(branchId: BranchId): string;
  /** Hash `{outcome, prepared, term, decidedAtMs, atMs}`: until `forget`; a rollback's is the tombstone. */
  outcome(branchId: BranchId): string;
}

export function namespaceKeys(namespace: string): NamespaceKeys {
  const prefix = `${namespace}:`;
  return {
    prefix,
    cluster: `${prefix}cluster`,
    prepared: `${prefix}prepared`,
    branch: (branchId) => `${prefix}branch:${branchId}`,
    outcome: (branchId) => `${prefix}outcome:${branchId}`,
  };
}

/** Whether a user key falls inside Verdict's namespace (and must be refused). */
export function isReservedKey(keys: NamespaceKeys, key: string): boolean {
  return key.startsWith(keys.prefix);
}
