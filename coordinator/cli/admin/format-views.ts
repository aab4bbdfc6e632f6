/**
 * The participants' own views as text (`verdict admin show`, `verdict admin participants`):
 * the same facts the console shows beside Verdict's view, one `key  value` line each. Pure.
 */
import type { AdminTransactionView, ParticipantsResponse } from "../../api/contract/schemas.js";
import { age, cell, fields } from "../text.js";

type Entry = NonNullable<AdminTransactionView["participants"]>[number];
type View = NonNullable<Entry["view"]>;

/** `participant views` lines: for each branch, what its participant holds now. */
export function formatParticipantViews(t: AdminTransactionView, nowMs: number): string[] {
  if (t.participants === undefined) return [];
  const out = ["", "participant views"];
  if (t.participants.length === 0) out.push("  (none)");
  for (const p of t.participants) {
    out.push(`  #${p.branch} ${p.participant} (read ${p.observedAt})`);
    const pairs = p.view ? viewFacts(p.view, nowMs) : [["error", cell(p.error, 1000)] as const];
    out.push(
      ...fields(pairs)
        .split("\n")
        .map((l) => `    ${l}`),
    );
  }
  return out;
}

function viewFacts(v: View, nowMs: number): (readonly [string, string])[] {
  const facts: (readonly [string, string])[] = [["holds", v.holds]];
  switch (v.kind) {
    case "postgres":
      if (v.prepared) {
        facts.push([
          "prepared at",
          `${v.prepared.preparedAt} (${age(v.prepared.preparedAt, nowMs)} ago)`,
        ]);
        facts.push(["owner", v.prepared.owner], ["database", v.prepared.database]);
      }
      facts.push(["locks", `${v.locks.held} held for ${Math.round(v.locks.heldForMs / 1000)}s`]);
      if (v.locks.relations.length > 0) facts.push(["on", v.locks.relations.join(", ")]);
      for (const b of v.locks.blocked) {
        facts.push([
          "blocks",
          `pid ${b.pid} (${b.user}, waiting ${Math.round(b.waitingMs / 1000)}s): ${cell(b.query, 200)}`,
        ]);
      }
      facts.push(["marker", v.marker.present ? `yes (${v.marker.at ?? "-"})` : "no"]);
      if (v.marker.forged > 0) facts.push(["forged markers", String(v.marker.forged)]);
      facts.push(["tombstone", v.tombstone.present ? `yes (${v.tombstone.at ?? "-"})` : "no"]);
      return facts;
    case "redis":
      if (v.staged) {
        facts.push(["staged at", v.staged.preparedAt]);
        facts.push(["staged", `${v.staged.ops} op(s), ${v.staged.preconditions} precondition(s)`]);
        for (const op of v.staged.firstOps)
          facts.push([op.op, cell(`${op.key} ${op.detail}`, 200)]);
      }
      facts.push(["locks held", v.locksHeld.length > 0 ? v.locksHeld.join(", ") : "none"]);
      facts.push([
        "outcome",
        v.outcome ? `${v.outcome.outcome} at ${v.outcome.at} (term ${v.outcome.term})` : "none",
      ]);
      return facts;
    case "kafka": {
      const m = v.marker;
      facts.push([
        "marker",
        m.committed
          ? `committed at ${m.topic}/${m.partition}@${m.offset ?? "?"}`
          : `not committed (read ${m.topic}/${m.partition} ${m.scannedFrom}-${m.scannedUntil})`,
      ]);
      facts.push([
        "transactional id",
        `${v.transactionalId.id}: ${v.transactionalId.state ?? "state unknown"}`,
      ]);
      return facts;
    }
  }
}

/** The line under a prepared branch: its age and what the log says of it. */
export function preparedLine(
  p: ParticipantsResponse["participants"][number],
  branchId: string,
): string | undefined {
  const e = p.prepared?.find((b) => b.branchId === branchId);
  if (!e) return undefined;
  const since = e.ageMs === null ? "age unknown" : `age ${Math.round(e.ageMs / 1000)}s`;
  return e.explained
    ? `    ${since}, in the log: ${e.xid ?? "?"} (${e.state ?? "?"})`
    : `    ${since}, NOT in the log: an orphan (recovery rolls it back)`;
}
