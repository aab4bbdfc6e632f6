/**
 * The admin participant listing: each participant's health and this cluster's prepared
 * branches, asked through the driver (its call bound, metrics, failpoints, typed errors),
 * each with what the log says of it (an unexplained one is an orphan recovery rolls back)
 * and its age. A participant that cannot answer is listed as not ok with the reason: the
 * listing never fails.
 */
import { messageOf } from "../../participants/common/errors.js";
import { responseLimits } from "../config/limits.js";
import type { BranchId, BranchView } from "../../participants/participant.js";
import { parseBranchId, type ClusterId, type Xid } from "../core/ids.js";
import type { AdminFacts } from "../core/inputs.js";
import type { ParticipantsResponse } from "./contract/schemas.js";

type ParticipantKind = ParticipantsResponse["participants"][number]["kind"];
type PreparedEntry = ParticipantsResponse["participants"][number]["prepared"][number];

/** The driver's direct participant calls the listing needs. */
export interface ParticipantProbe {
  participantHealth(
    name: string,
    boundMs: number,
  ): Promise<{ ok: boolean; detail: string; warnings: readonly string[] }>;
  listPrepared(name: string): Promise<readonly string[]>;
  inspectBranch(name: string, branchId: BranchId): Promise<BranchView>;
}

const {
  preparedBranchesListedMax: preparedListedMax,
  messageCharsMax: detailCharsMax,
  warningsMax,
} = responseLimits;
/** What the log knows of a prepared branch: undefined when nothing (an orphan). */
export type ExplainBranch = (
  branchId: string,
) => { xid: string; state: string; beganAtMs: number } | undefined;

/** Branches per participant whose prepare time is asked of the participant itself. */
export const preparedInspectedMax = 20;

export async function describeParticipants(
  configured: readonly { name: string; kind: ParticipantKind }[],
  probe: ParticipantProbe,
  healthBoundMs: number,
  explain: ExplainBranch,
  nowMs: number,
): Promise<ParticipantsResponse> {
  return {
    participants: await Promise.all(
      configured.map(async ({ name, kind }) => {
        const [health, prepared] = await Promise.allSettled([
          probe.participantHealth(name, healthBoundMs),
          probe.listPrepared(name),
        ]);
        const branches = prepared.status === "fulfilled" ? prepared.value : [];
        const problems = [health, prepared].flatMap((r) =>
          r.status === "rejected" ? [messageOf(r.reason)] : [],
        );
        const listed = branches.slice(0, preparedListedMax);
        return {
          name,
          kind,
          ok: problems.length === 0 && health.status === "fulfilled" && health.value.ok,
          detail: [health.status === "fulfilled" ? health.value.detail : "", ...problems]
            .filter((text) => text !== "")
            .join("; ")
            .slice(0, detailCharsMax),
          warnings:
            health.status === "fulfilled"
              ? health.value.warnings.slice(0, warningsMax).map((w) => w.slice(0, detailCharsMax))
              : [],
          preparedBranches: listed,
          preparedBranchesTruncated: branches.length > preparedListedMax,
          prepared: await Promise.all(
            listed.map((id, i) =>
              preparedEntry(id, explain(id), i < preparedInspectedMax, name, probe, nowMs),
            ),
          ),
        };
      }),
    ),
  };
}

async function preparedEntry(
  branchId: string,
  known: ReturnType<ExplainBranch>,
  ask: boolean,
  name: string,
  probe: ParticipantProbe,
  nowMs: number,
): Promise<PreparedEntry> {
  const view = ask
    ? await probe.inspectBranch(name, branchId as BranchId).catch(() => undefined)
    : undefined;
  const preparedAtMs = preparedAtOf(view);
  const sinceMs = preparedAtMs ?? known?.beganAtMs;
  return {
    branchId,
    explained: known !== undefined,
    xid: known?.xid ?? null,
    state: known?.state ?? null,
    preparedAt: preparedAtMs === undefined ? null : new Date(preparedAtMs).toISOString(),
    ageMs: sinceMs === undefined ? null : Math.max(0, nowMs - sinceMs),
  };
}

function preparedAtOf(view: BranchView | undefined): number | undefined {
  if (view?.kind === "postgres") return view.prepared?.preparedAtMs;
  if (view?.kind === "redis") return view.staged?.preparedAtMs;
  return undefined;
}

/** `ExplainBranch` from the log's admin facts: known when its transaction has that branch. */
export function explainFromLog(
  clusterId: ClusterId,
  adminFacts: (xid: Xid) => AdminFacts | undefined,
): ExplainBranch {
  return (branchId) => {
    const id = parseBranchId(clusterId, branchId);
    const facts = id && adminFacts(id.xid);
    if (!id || !facts || !facts.view.branches.some((b) => b.branch === id.n)) return undefined;
    return { xid: id.xid, state: facts.view.state, beganAtMs: facts.beganAtMs };
  };
}
