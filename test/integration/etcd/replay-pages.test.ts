/**
 * Proves, against the real 3-member etcd cluster, that the takeover read pages by what it
 * finds (replay.ts): a log of small batches is read in a few growing pages rather than one
 * page per `pageKeys` keys (the count that fits even the largest values), and large values
 * after small ones, which overflow a grown page, are read again in smaller pages down to
 * `pageKeys`: the replay still returns every entry, in order.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connectEtcd, connectionDefaults } from "../../../coordinator/log/etcd/client.js";
import { Leadership, leadershipDefaults } from "../../../coordinator/log/etcd/leadership.js";
import { endpoints, ensureEtcd, TestCluster } from "./helpers.js";

/** A reply limit small enough that a page of 24 large values outgrows it. */
const replyBytesMax = 256 * 1024;
const batchBytesMax = 16 * 1024;
/** floor(256 KiB / (16 KiB + 16 KiB of overhead)): the page size any values fit. */
const pageKeys = 8;

describe("etcd decision log: replay pages", () => {
  let cluster: TestCluster;
  before(ensureEtcd);
  before(() => {
    cluster = new TestCluster();
  });
  after(() => cluster.close());

  /** A node whose connection refuses replies over `replyBytesMax` and counts its ranges. */
  function smallReplyNode(nodeId: string) {
    const counted = { ranges: 0 };
    const client = connectEtcd({
      endpoints,
      ...connectionDefaults,
      replyBytesMax,
      onRequest: (method) => {
        if (method === "KV.range") counted.ranges++;
      },
    });
    const leadership = new Leadership({
      client,
      layout: cluster.layout,
      nodeId,
      url: `http://${nodeId}.test`,
      ...leadershipDefaults,
    });
    return { client, leadership, counted };
  }

  const options = { replyBytesMax, batchBytesMax, chunkBytesMax: batchBytesMax };

  test("small batches are read in growing pages; large ones after them in smaller pages", async () => {
    const a = smallReplyNode("a");
    try {
      assert.ok(await a.leadership.campaign());
      const log = await cluster.openLog(a, options);
      const small = 200;
      const large = 40;
      const records = [
        ...Array.from({ length: small }, (_, i) => `small-${i}`),
        ...Array.from({ length: large }, (_, i) => `large-${i}-${"x".repeat(15_000)}`),
      ];
      // One append at a time: one log key (one batch) each.
      for (const r of records) await log.append([r]);
      assert.equal((await cluster.logKeys()).length, small + large);

      a.counted.ranges = 0;
      const replayed = await log.replay();
      assert.deepEqual(
        replayed.entries.map((e) => [e.index, e.record]),
        records.map((r, i) => [i + 1, r]),
      );
      // Fixed pages of `pageKeys` would take (200 + 40) / 8 = 30 ranges, plus the pointer read.
      const fixedPages = Math.ceil((small + large) / pageKeys);
      assert.ok(
        a.counted.ranges < fixedPages / 2,
        `${a.counted.ranges} range requests, against ${fixedPages} pages of ${pageKeys}`,
      );
      await a.leadership.resign();
    } finally {
      a.leadership.close();
      a.client.close();
    }
  });
});
