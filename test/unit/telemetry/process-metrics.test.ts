/**
 * Proves that a node's registry serves the process's own metrics beside Verdict's: heap used,
 * resident set and event-loop lag, as Prometheus names them, with live values; and that
 * several nodes in one process (as in tests) each serve them without registering the
 * collectors twice.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createMetrics } from "../../../coordinator/telemetry/metrics.js";

/** The value of the first sample of `name` in a text rendering. */
function sample(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  assert.ok(line !== undefined, `no sample ${name}`);
  return Number(line.split(" ")[1]);
}

test("a node's /metrics text holds heap, RSS and event-loop lag, for each node in the process", async () => {
  const first = await createMetrics().registry.metrics();
  const second = await createMetrics().registry.metrics();
  for (const text of [first, second]) {
    assert.ok(sample(text, "nodejs_heap_size_used_bytes") > 1_000_000);
    assert.ok(sample(text, "process_resident_memory_bytes") > 10_000_000);
    assert.ok(sample(text, "nodejs_eventloop_lag_seconds") >= 0);
    assert.ok(text.includes("verdict_route_seconds"), "Verdict's own metrics are there too");
  }
});
