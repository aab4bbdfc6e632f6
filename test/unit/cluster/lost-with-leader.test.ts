/**
 * The cluster's "lost with its leader" answer follows the presumed-abort watermark, not a
 * clock: a call about an unknown xid begun in an earlier term answers 409 `leader-changed`
 * when it began after everything the log forgot (however old it is), and is left to the
 * engine (which answers not-found) when it began at or before the watermark. The routing
 * hook runs in a real Fastify instance with the real table deciding.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import Fastify from "fastify";
import { installRouting, type RoutingNode } from "../../../coordinator/cluster/routing.js";
import { newClusterXid } from "../../../coordinator/cluster/xid-term.js";
import type { Forwarder } from "../../../coordinator/cluster/forward.js";
import type { Term } from "../../../coordinator/core/ids.js";
import { TxnTable } from "../../../coordinator/core/table.js";

const retentionMs = 1_000;

async function statusOf(table: TxnTable, xid: string, nowMs: number): Promise<number> {
  const app = Fastify();
  const node: RoutingNode = {
    nodeId: "n2",
    term: () => 2,
    leader: () => undefined,
    confirmLeadership: () => Promise.resolve(),
    knows: () => false,
    mayHaveForgotten: (beganAtMs) => table.mayHaveForgotten(beganAtMs, nowMs, retentionMs),
    nowMs: () => nowMs,
    forwarder: {} as Forwarder,
  };
  installRouting(
    {
      onRequest: (h) => app.addHook("onRequest", h),
      preParsing: (h) => app.addHook("preParsing", h),
    },
    node,
  );
  app.get("/v1/transactions/:xid", () => ({ engine: "answered" }));
  const answer = await app.inject({ method: "GET", url: `/v1/transactions/${xid}` });
  await app.close();
  return answer.statusCode;
}

test("an unknown xid of an earlier term, begun after the watermark, is lost however old", async () => {
  const table = new TxnTable();
  const beganAtMs = 1_000_000;
  const xid = newClusterXid(beganAtMs, 1 as Term, "ab12");
  // Far past the retention time, and nothing was ever forgotten: it cannot have finished.
  assert.equal(await statusOf(table, xid, beganAtMs + 100 * retentionMs), 409);
});

test("one begun at or before the watermark may have been forgotten: the engine answers", async () => {
  const table = TxnTable.restore(
    new TextEncoder().encode(
      JSON.stringify({ v: 1, lastApplied: 0, forgetWatermarkMs: 2_000_000, txns: [] }),
    ),
  );
  const xid = newClusterXid(1_000_000, 1 as Term, "cd34");
  assert.equal(await statusOf(table, xid, 1_000_000 + 10), 200);
});
