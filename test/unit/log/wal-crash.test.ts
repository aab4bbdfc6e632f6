/**
 * Proves the decision log's durability contract under crashes, on the fault-injecting
 * MemoryDisk: many seeded rounds of concurrent appends and snapshots interleaved with
 * power losses (with and without a torn last write, at random points or inside a
 * storage call) and injected I/O errors. After every reopen: each append whose promise
 * resolved is present, in order, with no gap, and nothing is there that was not appended.
 * A failure names its seed; replay one with WAL_SEED=<n>.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { LogError } from "../../../coordinator/log/errors.js";
import { LocalDecisionLog } from "../../../coordinator/log/local-decision-log.js";
import { MemoryDisk } from "../../../coordinator/log/memory-storage.js";
import type { FaultAction } from "../../../coordinator/log/memory-storage.js";
import { seededRandom, tick } from "./seeded-random.js";
import type { SeededRandom } from "./seeded-random.js";

const roundsMax = Number(process.env.WAL_ROUNDS ?? 200);
const timeBudgetMs = 20_000;
const livesPerRound = 6;
const stepsPerLifeMax = 120;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** The records a reopened log holds, checked against everything ever appended. */
async function recover(
  log: LocalDecisionLog<string>,
  history: readonly string[],
  ackedMax: number,
): Promise<{ records: string[]; snapshotIndex: number }> {
  const { snapshot, entries } = await log.replay();
  const records =
    snapshot === undefined ? [] : (JSON.parse(fromUtf8.decode(snapshot.data)) as string[]);
  assert.equal(records.length, snapshot?.index ?? 0, "snapshot holds its index's records");
  for (const entry of entries) {
    assert.equal(entry.index, records.length + 1, "indices run without a gap");
    records.push(entry.record);
  }
  assert.equal(log.lastIndex(), records.length, "lastIndex matches the replay");
  assert.ok(
    records.length >= ackedMax,
    `acknowledged ${ackedMax}, recovered only ${records.length}`,
  );
  assert.deepEqual(
    records,
    history.slice(0, records.length),
    "recovered log is a prefix of what was appended",
  );
  return { records, snapshotIndex: snapshot?.index ?? 0 };
}

async function runRound(seed: number): Promise<{ crashes: number; tornTails: number }> {
  const random = seededRandom(seed);
  const disk = new MemoryDisk(() => random.next());
  let history: string[] = [];
  let ackedMax = 0;
  let appendSeq = 0;
  let tornTails = 0;
  for (let life = 0; life < livesPerRound; life++) {
    const log = await LocalDecisionLog.open<string>({
      storage: disk.storage(),
      dir: "/data/wal",
      segmentBytesMax: random.int(150, 800),
      writeBytesMax: random.int(100, 400),
    });
    if (log.recovery.truncatedTail !== undefined) tornTails += 1;
    const recovered = await recover(log, history, ackedMax);
    history = recovered.records;
    ackedMax = history.length;
    let snapshotIndex = recovered.snapshotIndex;
    const pending: Promise<unknown>[] = [];
    const ending = planEnding(random, disk);
    for (let step = 0; step < stepsPerLifeMax && !ending.happened(); step++) {
      const roll = random.next();
      if (roll < 0.5) {
        const records = Array.from(
          { length: random.int(1, 3) },
          () => `r${seed}.${life}.${appendSeq++}`,
        );
        const firstIndex = history.length + 1;
        history.push(...records);
        pending.push(
          log.append(records).then(
            (result) => {
              assert.ok(!ending.crashed(), "an append resolved after the crash");
              assert.equal(result.firstIndex, firstIndex, "indices follow call order");
              ackedMax = Math.max(ackedMax, result.lastIndex);
            },
            (error: unknown) =>
              assert.ok(error instanceof LogError && ending.happened(), `${String(error)}`),
          ),
        );
      } else if (roll < 0.55 && log.lastIndex() > snapshotIndex) {
        snapshotIndex = random.int(snapshotIndex + 1, log.lastIndex());
        const data = utf8.encode(JSON.stringify(history.slice(0, snapshotIndex)));
        pending.push(
          log.saveSnapshot(snapshotIndex, data).catch(() => assert.ok(ending.happened())),
        );
      }
      for (let t = random.int(0, 3); t > 0; t--) await tick();
      ending.maybeNow(step);
    }
    if (!ending.happened()) {
      // A fault armed for a later storage call may still strike while closing.
      await log.close().catch((error: unknown) => assert.ok(ending.happened(), String(error)));
      ending.closed();
    }
    await Promise.all(pending);
    await log.close().catch(() => undefined); // the old process is gone before the next starts
    disk.setFault(undefined);
  }
  const last = await LocalDecisionLog.open<string>({ storage: disk.storage(), dir: "/data/wal" });
  await recover(last, history, ackedMax);
  await last.close();
  return { crashes: disk.stats.crashes, tornTails };
}

/** How a life ends: 0 crash at a step, 1 crash inside a storage call, 2 I/O error in one, 3 clean close. */
function planEnding(random: SeededRandom, disk: MemoryDisk) {
  let happened = false;
  const kind = random.int(0, 3);
  const at = random.int(5, stepsPerLifeMax);
  const tear = random.chance(0.5);
  if (kind === 1 || kind === 2) {
    let ops = 0;
    const action: FaultAction = kind === 1 ? "crash" : "fail";
    disk.setFault(() => {
      if (++ops !== at * 3) return undefined;
      happened = true;
      return action;
    });
  }
  return {
    happened: () => happened,
    /** Power was lost (an injected I/O error alone loses nothing). */
    crashed: () => happened && kind !== 2 && kind !== 3,
    maybeNow(step: number): void {
      if (kind === 0 && step === at && !happened) {
        happened = true;
        disk.crash({ tearLastWrite: tear });
      }
    },
    closed(): void {
      happened = true;
    },
  };
}

describe("decision log under crashes (seeded)", () => {
  test("every acknowledged append survives, in order, nothing invented", async () => {
    const only = process.env.WAL_SEED;
    const seeds =
      only === undefined ? Array.from({ length: roundsMax }, (_, i) => i + 1) : [Number(only)];
    const startMs = Date.now();
    let rounds = 0;
    let crashes = 0;
    let tornTails = 0;
    for (const seed of seeds) {
      if (Date.now() - startMs > timeBudgetMs) break;
      try {
        const result = await runRound(seed);
        crashes += result.crashes;
        tornTails += result.tornTails;
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        throw new Error(`seed ${seed} failed (replay: WAL_SEED=${seed}): ${message}`, {
          cause: error,
        });
      }
      rounds += 1;
    }
    console.log(`${rounds} rounds, ${crashes} crashes, ${tornTails} torn tails cut on reopen`);
    assert.ok(
      rounds >= Math.min(20, seeds.length),
      `only ${rounds} rounds ran within ${timeBudgetMs} ms`,
    );
    assert.ok(crashes > 0 && (tornTails > 0 || seeds.length === 1), "the faults were exercised");
  });
});
