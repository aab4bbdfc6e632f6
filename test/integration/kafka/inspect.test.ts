/**
 * Proves the Kafka participant's own view of a branch against the real broker: before its
 * commit a branch has no committed marker (absent); after, the marker is committed at the
 * offset where a read_committed reader finds it; a rolled-back branch shows rolled-back;
 * the vote's evidence moves where the scan starts.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { markerPartitionOf, transactionalIdOf } from "../../../participants/kafka/layout.js";
import type { KafkaParticipant } from "../../../participants/kafka/participant.js";
import type { BranchId } from "../../../participants/participant.js";
import {
  commitWithRetries,
  createFixture,
  payloadOf,
  phase2,
  prepareCtx,
  type Fixture,
} from "./helpers.js";

void describe("Kafka participant: inspect", () => {
  let f: Fixture;
  let p: KafkaParticipant;
  let topic: string;
  const layout = () => ({
    transactionalIdPrefix: f.transactionalIdPrefix,
    poolSize: 4,
    markerPartitions: 3,
  });
  const inspect = async (id: BranchId, evidence?: string) => {
    const view = await p.inspect(id, evidence);
    assert.equal(view.kind, "kafka");
    return view;
  };

  before(async () => {
    f = await createFixture();
    topic = await f.topic("events", 1);
    p = await f.started();
  });
  after(async () => f?.cleanup());

  void test("the marker: absent before the commit, committed at its offset after", async () => {
    const branchId = f.branchId();
    const payload = payloadOf([{ topic, value: "x" }]);
    const vote = await p.prepare({ branchId, payload }, prepareCtx());
    assert.equal(vote.vote, "yes");
    const evidence = vote.vote === "yes" ? vote.evidence : undefined;
    const pending = await inspect(branchId, evidence);
    assert.equal(pending.holds, "absent");
    assert.equal(pending.marker.committed, false);
    assert.equal(pending.marker.offset, null);
    assert.equal(pending.marker.partition, markerPartitionOf(layout(), branchId));
    assert.equal(pending.transactionalId.id, transactionalIdOf(layout(), branchId));

    assert.equal((await commitWithRetries(p, branchId, payload, phase2())).outcome, "done");
    const read = await f.reader.readSettled(f.markerTopic, pending.marker.partition);
    const marker = read.records.find((r) => r.key === branchId);
    assert.ok(marker, "the reader finds the marker");
    const done = await inspect(branchId, evidence);
    assert.equal(done.holds, "committed");
    assert.equal(done.marker.committed, true);
    assert.equal(done.marker.offset, marker.offset.toString());
    assert.equal(done.marker.scannedFrom, evidence?.split(":").at(-1));
    // Without evidence the scan starts at the partition's start and finds it too.
    const fromStart = await inspect(branchId);
    assert.equal(fromStart.marker.offset, marker.offset.toString());
  });

  void test("a rolled-back branch is shown rolled back", async () => {
    const branchId = f.branchId();
    const payload = payloadOf([{ topic, value: "y" }]);
    assert.equal((await p.rollback({ branchId, payload }, phase2())).outcome, "done");
    assert.equal((await inspect(branchId)).holds, "rolled-back");
  });
});
