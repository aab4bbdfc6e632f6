/**
 * Recovery (issue #4): settles prepared branches the log does not explain, by writing a
 * `recover` record per transaction (recovery-decision.ts says which branches and how); phase 2
 * then carries the decision out once the record is applied, like any other.
 */
import { parseBranchId, xidBeganAtMs, type Xid } from "./ids.js";
import type { RecoveredInput, SettlingBranch } from "./inputs.js";
import { recoveryPrincipal, type Leader } from "./leader.js";
import type { BranchSpec } from "./records.js";
import { orphanAction, type ScanContext } from "./recovery-decision.js";

interface Group {
  readonly unknown: boolean;
  readonly branches: BranchSpec[];
}

export function recovered(l: Leader, input: RecoveredInput): void {
  const scan: ScanContext = {
    table: l.table,
    startedAtIndex: input.startedAtIndex,
    forgotSince: l.replica.lastForgetIndex > input.startedAtIndex,
    isLive: (xid) => l.live.has(xid),
    isRecovering: (xid) => l.recovering.has(xid),
  };
  const groups = new Map<Xid, Group>();
  let found = 0;
  let committed = 0;
  let rolledBack = 0;
  const settling: SettlingBranch[] = [];
  for (const list of input.found) {
    for (const branchId of list.branchIds) {
      found += 1;
      const id = parseBranchId(l.cfg.clusterId, branchId);
      const action = id && orphanAction(scan, id.xid, id.n);
      if (!id || !action) continue;
      const t = l.table.get(id.xid);
      const group = groups.get(id.xid) ?? { unknown: t === undefined, branches: [] };
      groups.set(id.xid, group);
      if (group.branches.some((b) => b.n === id.n)) continue;
      group.branches.push(
        t?.branches.find((b) => b.n === id.n) ?? {
          n: id.n,
          branchId: branchId as BranchSpec["branchId"],
          participant: list.participant,
          kind: list.kind,
          payload: { kind: "orphan" },
        },
      );
      if (action === "commit") committed += 1;
      else rolledBack += 1;
      settling.push({
        participant: list.participant,
        branchId,
        action: action === "commit" ? "commit" : "rollback",
      });
    }
  }
  for (const [xid, group] of groups) proposeRecover(l, xid, group);
  l.reply(input.req, {
    kind: "recovery",
    report: { found, committed, rolledBack, left: found - committed - rolledBack, settling },
  });
}

function proposeRecover(l: Leader, xid: Xid, group: Group): void {
  const beganAtMs = xidBeganAtMs(xid) ?? l.nowMs;
  const decision = l.table.get(xid)?.decision?.decision ?? "abort";
  const header = {
    xid,
    principal: recoveryPrincipal,
    beganAtMs,
    deadlineMs: l.nowMs,
    labels: {},
  };
  const proposal = l.propose({
    type: "recover",
    v: 1,
    xid,
    ...(group.unknown ? { txn: header } : {}),
    branches: group.branches,
    reason: group.unknown
      ? "recovery: a prepared branch of a transaction the log does not know: presumed abort"
      : `recovery: a branch still prepared after the ${decision} decision was carried out`,
    atMs: l.nowMs,
  });
  l.recovering.set(xid, proposal);
}
