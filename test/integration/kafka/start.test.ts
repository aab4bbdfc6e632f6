/**
 * Proves what `start` refuses and records, against the real broker:
 * - it creates the marker topic compacted+delete, LogAppendTime, with the configured
 *   partitions and retention, and a second start verifies it without complaint;
 * - a start with another pool size (or transactional-id prefix) than the one recorded for
 *   the cluster is refused, unless `poolSizeChange: "allow"`, which records the new layout
 *   (and from then on the old one is refused);
 * - an existing marker topic with CreateTime timestamps, too few partitions or too short a
 *   retention is refused;
 * - health answers, recover lists nothing (nothing is ever prepared inside Kafka).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import { MarkerTopicError, PoolLayoutChangedError } from "../../../participants/kafka/errors.js";
import { createFixture, type Fixture } from "./helpers.js";

const { ConfigResourceTypes } = kafkajs;

void describe("Kafka participant: start", () => {
  let f: Fixture;

  before(async () => {
    f = await createFixture();
  });
  after(async () => {
    await f?.cleanup();
  });

  void test("creates the marker topic with safe settings; a second start verifies it", async () => {
    const p = await f.started();
    const metadata = await f.admin.fetchTopicMetadata({ topics: [f.markerTopic] });
    assert.equal(metadata.topics[0]?.partitions.length, 3);
    const described = await f.admin.describeConfigs({
      includeSynonyms: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: f.markerTopic,
          configNames: ["cleanup.policy", "message.timestamp.type", "retention.ms"],
        },
      ],
    });
    const configs = Object.fromEntries(
      (described.resources[0]?.configEntries ?? []).map((e) => [e.configName, e.configValue]),
    );
    assert.deepEqual(configs, {
      "cleanup.policy": "compact,delete",
      "message.timestamp.type": "LogAppendTime",
      "retention.ms": String(7 * 24 * 60 * 60 * 1000), // the default markerRetentionMs
    });
    const health = await p.health();
    assert.equal(health.ok, true, health.detail);
    assert.deepEqual(await p.recover(), []);
    await (await f.started()).close();
    // Asking for a longer retention than the topic keeps is refused.
    await assert.rejects(
      f.participant({ markerRetentionMs: 8 * 24 * 60 * 60 * 1000 }).start(f.clusterId),
      MarkerTopicError,
    );
  });

  void test("a changed pool size is refused unless allowed; then the old one is refused", async () => {
    await f.started({ poolSize: 4 });
    const changed = f.participant({ poolSize: 8 });
    await assert.rejects(changed.start(f.clusterId), (err: unknown) => {
      assert.ok(err instanceof PoolLayoutChangedError, String(err));
      assert.match(err.message, /poolSize 4 → 8/);
      assert.equal(err.retryable, false);
      return true;
    });
    const prefix = f.participant({ transactionalIdPrefix: `${f.transactionalIdPrefix}-other` });
    await assert.rejects(prefix.start(f.clusterId), PoolLayoutChangedError);

    await f.started({ poolSize: 8, poolSizeChange: "allow" });
    await f.started({ poolSize: 8 });
    await assert.rejects(f.participant({ poolSize: 4 }).start(f.clusterId), /poolSize 8 → 4/);
    // Another cluster sharing the marker topic has its own record.
    await f.participant({ poolSize: 2 }).start(`${f.clusterId}-b`);
  });

  void test("an unsafe existing marker topic is refused", async () => {
    const createTime = await f.topic("markers-createtime", 3, { "cleanup.policy": "compact" });
    await assert.rejects(
      f.participant({ markerTopic: createTime }).start(f.clusterId),
      (err: unknown) => err instanceof MarkerTopicError && /LogAppendTime/.test(err.message),
    );
    const few = await f.topic("markers-few", 1, { "message.timestamp.type": "LogAppendTime" });
    await assert.rejects(
      f.participant({ markerTopic: few }).start(f.clusterId),
      (err: unknown) => err instanceof MarkerTopicError && /1 partitions/.test(err.message),
    );
    const short = await f.topic("markers-short", 3, {
      "message.timestamp.type": "LogAppendTime",
      "cleanup.policy": "compact,delete",
      "retention.ms": "3600000",
    });
    await assert.rejects(
      f.participant({ markerTopic: short }).start(f.clusterId),
      (err: unknown) => err instanceof MarkerTopicError && /retention\.ms/.test(err.message),
    );
  });
});
