/**
 * The admin participant listing: each participant's health and this cluster's prepared
 * branches, asked through the driver (its call bound, metrics, failpoints, typed errors).
 * A participant that cannot answer is listed as not ok with the reason: the listing never fails.
 */
import { messageOf } from "../../participants/common/errors.js";
import { responseLimits } from "../config/limits.js";
import type { ParticipantsResponse } from "./contract/schemas.js";

type ParticipantKind = ParticipantsResponse["participants"][number]["kind"];

/** The driver's direct participant calls the listing needs. */
export interface ParticipantProbe {
  participantHealth(
    name: string,
    boundMs: number,
  ): Promise<{ ok: boolean; detail: string; warnings: readonly string[] }>;
  listPrepared(name: string): Promise<readonly string[]>;
}

const {
  preparedBranchesListedMax: preparedListedMax,
  messageCharsMax: detailCharsMax,
  warningsMax,
} = responseLimits;

export async function describeParticipants(
  configured: readonly { name: string; kind: ParticipantKind }[],
  probe: ParticipantProbe,
  healthBoundMs: number,
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
          preparedBranches: branches.slice(0, preparedListedMax),
          preparedBranchesTruncated: branches.length > preparedListedMax,
        };
      }),
    ),
  };
}
