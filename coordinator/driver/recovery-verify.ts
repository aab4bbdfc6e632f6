/**
 * A recovery scan reports only what it verified: a branch it logged a commit or rollback for
 * counts once its participant no longer lists it prepared (gone from pg_prepared_xacts, no
 * longer staged in Redis). Until then — a rollback blocked, a participant down — it is
 * `pending`, and phase 2 keeps retrying it (G3) after the report.
 */
import type { SettlingBranch } from "../core/inputs.js";

const pollMs = 50;

export interface Verified {
  readonly committed: number;
  readonly rolledBack: number;
  readonly pending: number;
}

export async function verifySettled(
  settling: readonly SettlingBranch[],
  listPrepared: (participant: string) => Promise<readonly string[]>,
  now: () => number,
  /** How long to wait for the scan's own phase 2 before reporting the rest pending. */
  boundMs: number,
): Promise<Verified> {
  const done = { committed: 0, rolledBack: 0 };
  let waiting = [...settling];
  const startedMs = now();
  for (;;) {
    const prepared = new Map<string, ReadonlySet<string>>();
    for (const participant of new Set(waiting.map((b) => b.participant))) {
      // A participant that cannot answer proves nothing: its branches stay pending.
      const listed = await listPrepared(participant).catch(() => undefined);
      if (listed !== undefined) prepared.set(participant, new Set(listed));
    }
    waiting = waiting.filter((b) => {
      const listed = prepared.get(b.participant);
      if (listed === undefined || listed.has(b.branchId)) return true;
      if (b.action === "commit") done.committed += 1;
      else done.rolledBack += 1;
      return false;
    });
    if (waiting.length === 0 || now() - startedMs >= boundMs) break;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  return { ...done, pending: waiting.length };
}
