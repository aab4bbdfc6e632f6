/**
 * Proves that the marker scan proves absence or fails, over scripted fetch answers (the
 * broker's read_committed Fetch, as kafkajs decodes it):
 * - an empty fetch, or one that answers only records below the asked offset, before the end of
 *   the range is doubt and throws (it used to be taken as "compacted away", i.e. absent);
 * - records of aborted transactions and control records are never visited, and a committed
 *   transaction of the same producer after an aborted one is;
 * - records outside the range are not visited; the scan moves on from the last record.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  scanFetched,
  type FetchedRecord,
  type ScanSource,
} from "../../../participants/kafka/reader.js";

const record = (offset: number, key: string, producerId = "7", control = false): FetchedRecord => ({
  offset: String(offset),
  timestamp: "0",
  key: Buffer.from(key),
  value: Buffer.from(key),
  headers: {},
  isControlRecord: control,
  batchContext: { producerId, inTransaction: true },
});

/** An aborted transaction: its producer, first offset and the offset of its abort marker. */
interface Aborted {
  readonly producerId: string;
  readonly firstOffset: number;
  readonly lastOffset: number;
}

/**
 * Answers each fetch with the scripted records at or after the asked offset, at most `per`,
 * and, as the broker does, the aborted transactions not ended before that offset.
 */
function source(log: FetchedRecord[], aborted: Aborted[] = [], per = 2) {
  const asked: bigint[] = [];
  const s: ScanSource = {
    fetchesMax: 100,
    doubt: (what) => new Error(`doubt: ${what}`),
    fetchAt: (offset) => {
      asked.push(offset);
      const messages = log.filter((r) => BigInt(r.offset) >= offset).slice(0, per);
      const abortedTransactions = aborted
        .filter((a) => BigInt(a.lastOffset) >= offset)
        .map((a) => ({ producerId: a.producerId, firstOffset: String(a.firstOffset) }));
      return Promise.resolve({ abortedTransactions, messages });
    },
  };
  return { s, asked };
}

const keysSeen = async (s: ScanSource, fromOffset: bigint, untilOffset: bigint) => {
  const keys: string[] = [];
  await scanFetched(s, { fromOffset, untilOffset }, (r) => {
    keys.push(r.key ?? "");
    return false;
  });
  return keys;
};

void describe("marker scan", () => {
  void test("an empty fetch before the end of the range throws, never answers absent", async () => {
    const { s } = source([record(0, "a"), record(1, "b")]);
    await assert.rejects(
      scanFetched(s, { fromOffset: 0n, untilOffset: 5n }, (r) => r.key === "marker"),
      /doubt: a fetch at offset 2 returned no record before 5/,
    );
  });

  void test("a fetch answering only records below the asked offset throws", async () => {
    const s: ScanSource = {
      fetchesMax: 10,
      doubt: (what) => new Error(`doubt: ${what}`),
      fetchAt: () => Promise.resolve({ abortedTransactions: [], messages: [record(3, "old")] }),
    };
    await assert.rejects(
      scanFetched(s, { fromOffset: 4n, untilOffset: 6n }, () => false),
      /doubt: a fetch at offset 4 returned no record/,
    );
  });

  void test("aborted and control records are skipped; the producer's next commit is seen", async () => {
    const log = [
      record(0, "aborted-marker"),
      record(1, "abort", "7", true),
      record(2, "committed-marker"),
      record(3, "commit", "7", true),
    ];
    for (const per of [1, 2, 4]) {
      const { s } = source(log, [{ producerId: "7", firstOffset: 0, lastOffset: 1 }], per);
      assert.deepEqual(await keysSeen(s, 0n, 4n), ["committed-marker"], `${per} per fetch`);
    }
  });

  void test("only the range is visited, and the scan resumes after the last record", async () => {
    const log = [0, 1, 2, 3, 4, 5].map((o) => record(o, `k${o}`));
    const { s, asked } = source(log, [], 2);
    assert.deepEqual(await keysSeen(s, 1n, 4n), ["k1", "k2", "k3"]);
    assert.deepEqual(asked, [1n, 3n]);
  });

  void test("the scan stops at the first record visit accepts", async () => {
    const log = [0, 1, 2, 3].map((o) => record(o, `k${o}`));
    const { s, asked } = source(log, [], 1);
    assert.equal(
      await scanFetched(s, { fromOffset: 0n, untilOffset: 4n }, (r) => r.key === "k1"),
      true,
    );
    assert.deepEqual(asked, [0n, 1n]);
  });
});
