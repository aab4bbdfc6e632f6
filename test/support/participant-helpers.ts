/**
 * What the PostgreSQL, Redis and Kafka participant test fixtures share: a unique run
 * suffix, branch ids of the fixture's cluster, and the participants a fixture made, each
 * created with the fixture's defaults and closed together at cleanup.
 */
import { randomBytes } from "node:crypto";
import type { BranchId, Participant } from "../../participants/participant.js";

/** 8 hex characters, unique per call in practice: names a run's schema, keys and topics. */
export const suffix = (): string => randomBytes(4).toString("hex");

/** A new branch id of `clusterId` on each call: `<clusterId>:x<run>-<n>:1`. */
export function branchIds(clusterId: string, run: string): () => BranchId {
  let n = 0;
  return () => `${clusterId}:x${run}-${++n}:1` as BranchId;
}

export interface MadeParticipants<P, O> {
  /** Every participant made so far. */
  readonly made: P[];
  readonly participant: (overrides?: O) => P;
  /** A participant already started on the fixture's cluster. */
  readonly started: (overrides?: O) => Promise<P>;
  /** Closes every participant made, whatever each close does. */
  readonly closeAll: () => Promise<void>;
}

/** Makes participants with `create` and keeps them, so cleanup can close each one. */
export function madeParticipants<P extends Pick<Participant, "start" | "close">, O>(
  clusterId: string,
  create: (overrides: O | undefined) => P,
): MadeParticipants<P, O> {
  const made: P[] = [];
  const participant = (overrides?: O): P => {
    const p = create(overrides);
    made.push(p);
    return p;
  };
  return {
    made,
    participant,
    started: async (overrides) => {
      const p = participant(overrides);
      await p.start(clusterId);
      return p;
    },
    closeAll: async () => {
      await Promise.allSettled(made.map((p) => p.close()));
    },
  };
}
