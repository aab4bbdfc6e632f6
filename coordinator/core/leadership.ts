/**
 * Gaining and losing leadership. A leadership is one `Leader` object (leader.ts): built here
 * with its term, it catches up with the log, then takes over what the table says is under
 * way (phase 2 resumed, phase 1 of `preparing` ones re-driven, one-phase ones checked); on step-down it is dropped whole, after every waiting call hears `outcome-unknown`.
 */
import { tick } from "./deadlines.js";
import { queueForget } from "./forget-queue.js";
import type { Leader } from "./leader.js";
import { resumePhase1 } from "./phase1.js";
import { startPhase2 } from "./phase2.js";
import { leadershipChanged } from "./replies.js";
import { durableState } from "./table.js";

/**
 * The table now holds everything the log held when leadership began: drive every decided,
 * unfinished transaction; settle one-phase ones; start the retention of finished ones.
 */
export function catchUp(l: Leader): void {
  l.markCaughtUp();
  for (const t of l.table.all()) {
    const state = durableState(t);
    if (state === "committing" || state === "aborting") startPhase2(l, l.revive(t));
    else if (state === "preparing") {
      const live = l.revive(t);
      if (t.onePhase) {
        if (live.phase.kind === "preparing") live.phase.onePhaseCheckDueMs = l.nowMs;
      } else {
        // Finished, not rolled back: phase 1 is re-driven (prepares are idempotent) and decided.
        resumePhase1(l, live);
      }
    } else if (state === "committed" || state === "aborted") {
      // Finished before this node led: its retention counts from now.
      queueForget(l, t.header.xid, l.nowMs);
    }
  }
  tick(l);
}

/**
 * Leadership lost: every waiting call, client's or operator's, hears `outcome-unknown` — what
 * it asked for may or may not reach the log. The caller then drops the leader whole.
 */
export function abdicate(l: Leader): void {
  const unknown = leadershipChanged();
  for (const live of l.live.values()) {
    for (const w of live.waiting) l.reply(w.req, unknown);
  }
  for (const waits of l.operatorWaits.values()) {
    for (const w of waits) l.reply(w.req, unknown);
  }
}
