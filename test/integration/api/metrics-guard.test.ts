/**
 * `/metrics` cannot be used to slow the node down nor be read by anyone when so configured:
 * - concurrent scrapes within `metrics.cacheMs` are served by one rendering
 *   (`verdict_metrics_renders_total` rises by one for the whole burst);
 * - with `metrics.token`, a scrape without it (or with another secret) answers 401 in the
 *   API's error shape, and one with it is served;
 * - with `metrics.listen`, /metrics is served on that listener and no longer on the API's.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { after, describe, test } from "node:test";
import { assertError, raw, startApiNode, type ApiNode } from "./harness.js";

const rendersOf = (text: string): number => {
  const m = /^verdict_metrics_renders_total (\S+)$/m.exec(text);
  assert.ok(m?.[1], "verdict_metrics_renders_total is exposed");
  return Number(m[1]);
};

describe("/metrics under load and behind a token", () => {
  const nodes: ApiNode[] = [];
  after(async () => {
    for (const n of nodes) await n.stop();
  });
  const start = async (metrics: Record<string, unknown>): Promise<ApiNode> => {
    const node = await startApiNode({ metrics });
    nodes.push(node);
    return node;
  };

  test("a burst of concurrent scrapes is rendered once per cache window", async () => {
    const cacheMs = 5_000; // wide: 50 scrapes must fit in it on a loaded machine
    const node = await start({ cacheMs });
    const startedAt = Date.now();
    const first = await raw(node.url, "GET", "/metrics");
    assert.equal(first.status, 200);
    // The window began while the first scrape was served: count it from its answer, not its send.
    const renderedBy = Date.now();
    const burst = await Promise.all(
      Array.from({ length: 50 }, () => raw(node.url, "GET", "/metrics")),
    );
    const burstMs = Date.now() - startedAt;
    assert.ok(burstMs < cacheMs, `the burst took ${burstMs} ms, longer than the window`);
    for (const b of burst) assert.equal(b.text, first.text, "served from the one rendering");

    await sleep(cacheMs - (Date.now() - renderedBy) + 100);
    const later = await raw(node.url, "GET", "/metrics");
    assert.equal(rendersOf(later.text) - rendersOf(first.text), 1, "one rendering per window");
  });

  test("with a token, a scrape without it is 401; with it, 200", async () => {
    const token = randomBytes(18).toString("base64url");
    const node = await start({ cacheMs: 0, token });
    assertError(await raw(node.url, "GET", "/metrics"), 401, "unauthorized", "no token");
    assertError(
      await raw(node.url, "GET", "/metrics", { token: node.clientToken }),
      401,
      "unauthorized",
      "an API token is not the metrics token",
    );
    const ok = await raw(node.url, "GET", "/metrics", { token });
    assert.equal(ok.status, 200, ok.text);
    assert.match(ok.text, /^verdict_transactions_in_flight /m);
  });

  test("with a listener of its own, /metrics is served there and not on the API's", async () => {
    const node = await start({ cacheMs: 0, listen: "127.0.0.1:0" });
    const url = node.node.metricsUrl;
    assert.ok(url, "the node reports the metrics listener");
    assert.notEqual(url, node.url);
    const ok = await raw(url, "GET", "/metrics");
    assert.equal(ok.status, 200, ok.text);
    assert.match(ok.text, /^verdict_transactions_in_flight /m);
    assertError(await raw(node.url, "GET", "/metrics"), 404, "not-found", "API listener");
  });
});
