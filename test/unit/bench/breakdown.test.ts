// Proves that the bench reads Kafka batching from the node's metrics: branches per Kafka
// transaction is the histogram's sum over its count during the run (NaN when none), and the
// histogram never shows as a latency row of the per-step breakdown.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  breakdownTable,
  kafkaBranchesPerTransaction,
  parseScrape,
} from "../../../bench/breakdown.js";

const scrape = (branches: number, transactions: number, callSeconds: number) =>
  parseScrape(
    [
      `verdict_kafka_branches_per_transaction_sum{participant="k"} ${branches}`,
      `verdict_kafka_branches_per_transaction_count{participant="k"} ${transactions}`,
      `verdict_participant_call_seconds_sum{participant="k",op="commit"} ${callSeconds}`,
      `verdict_participant_call_seconds_count{participant="k",op="commit"} ${branches}`,
    ].join("\n"),
  );

describe("bench breakdown: Kafka batching", () => {
  test("branches per Kafka transaction over the run", () => {
    assert.equal(kafkaBranchesPerTransaction(scrape(10, 5, 1), scrape(40, 15, 2)), 3);
    assert.ok(Number.isNaN(kafkaBranchesPerTransaction(scrape(10, 5, 1), scrape(10, 5, 1))));
  });

  test("the batching histogram is not a step of the breakdown", () => {
    const rows = breakdownTable(scrape(10, 5, 1), scrape(40, 15, 2), 30);
    assert.deepEqual(
      rows.map((r) => r[0]),
      ["step", "participant k commit"],
    );
  });
});
