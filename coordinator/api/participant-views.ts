/**
 * Participant views for the admin API: a participant's own view of each branch of a
 * transaction (asked through the driver, each call time-bounded there, all at once: a
 * transaction has at most branchesPerTransactionMax branches), with epoch-ms times as ISO.
 * A participant that cannot answer gives its error in place of a view: the read never fails.
 */
import { messageOf } from "../../participants/common/errors.js";
import type { BranchView } from "../../participants/participant.js";
import type { AdminFacts } from "../core/inputs.js";
import type { AdminTransactionView } from "./contract/schemas.js";

export type ApiBranchView = NonNullable<
  NonNullable<AdminTransactionView["participants"]>[number]["view"]
>;

/** A participant's view of one branch, through the driver. */
export type InspectBranch = (participant: string, branchId: string) => Promise<BranchView>;

const iso = (ms: number) => new Date(ms).toISOString();

export async function participantViews(
  facts: AdminFacts,
  inspect: InspectBranch,
  nowMs: () => number,
): Promise<NonNullable<AdminTransactionView["participants"]>> {
  return Promise.all(
    facts.view.branches.map(async (b) => {
      const base = { branch: b.branch, participant: b.participant };
      try {
        const view = toApiBranchView(await inspect(b.participant, b.branchId));
        return { ...base, observedAt: iso(nowMs()), view };
      } catch (e) {
        return { ...base, observedAt: iso(nowMs()), error: messageOf(e).slice(0, 4000) };
      }
    }),
  );
}

export function toApiBranchView(v: BranchView): ApiBranchView {
  switch (v.kind) {
    case "postgres":
      return {
        ...v,
        prepared: v.prepared && {
          preparedAt: iso(v.prepared.preparedAtMs),
          owner: v.prepared.owner,
          database: v.prepared.database,
          transaction: v.prepared.transaction,
        },
        locks: { ...v.locks, relations: [...v.locks.relations], blocked: [...v.locks.blocked] },
        marker: {
          present: v.marker.present,
          forged: v.marker.forged,
          ...(v.marker.atMs === undefined ? {} : { at: iso(v.marker.atMs) }),
        },
        tombstone: {
          present: v.tombstone.present,
          ...(v.tombstone.atMs === undefined ? {} : { at: iso(v.tombstone.atMs) }),
        },
      };
    case "redis":
      return {
        ...v,
        staged: v.staged && {
          preconditions: v.staged.preconditions,
          ops: v.staged.ops,
          firstOps: [...v.staged.firstOps],
          preparedAt: iso(v.staged.preparedAtMs),
        },
        locksHeld: [...v.locksHeld],
        outcome: v.outcome && {
          outcome: v.outcome.outcome,
          prepared: v.outcome.prepared,
          term: v.outcome.term,
          decidedAt: iso(v.outcome.decidedAtMs),
          at: iso(v.outcome.atMs),
        },
      };
    case "kafka":
      return { ...v, marker: { ...v.marker }, transactionalId: { ...v.transactionalId } };
  }
}
