/**
 * The audit log on a real file system: records come back in order through cursor pages;
 * rotation keeps at most `filesMax` old files and pages still run across them; a reopened
 * log continues the sequence; a torn last line (a crash mid-write) is cut, not read, and
 * what is appended after it is read; appends beyond `pendingMax` are refused.
 */
import assert from "node:assert/strict";
import { appendFile, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, test } from "node:test";
import { AuditLog, AuditQueueFullError } from "../../../coordinator/audit/audit-log.js";

let dir: string;
const options = (o: Partial<{ fileBytesMax: number; filesMax: number; pendingMax: number }>) => ({
  dir,
  fileBytesMax: o.fileBytesMax ?? 1 << 20,
  filesMax: o.filesMax ?? 4,
  pendingMax: o.pendingMax ?? 100,
  nowMs: () => Date.UTC(2026, 11, 5),
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "verdict-audit-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function all(log: AuditLog, pageSize: number): Promise<number[]> {
  const seqs: number[] = [];
  let after = 0;
  for (let i = 0; i < 1000; i++) {
    const { records, next } = await log.page(after, pageSize);
    seqs.push(...records.map((r) => r.seq));
    if (next === null) return seqs;
    after = next;
  }
  assert.fail("paging did not end");
}

test("records page in order, with who, what and when", async () => {
  const log = await AuditLog.open(options({}));
  for (let i = 0; i < 7; i++) await log.append({ principal: "ops", action: `a${i}`, status: 200 });
  const first = await log.page(0, 3);
  assert.deepEqual(
    first.records.map((r) => r.action),
    ["a0", "a1", "a2"],
  );
  assert.equal(first.records[0]?.at, "2026-12-05T00:00:00.000Z");
  assert.equal(first.next, 3);
  assert.deepEqual(await all(log, 3), [1, 2, 3, 4, 5, 6, 7]);
  await log.close();
});

test("rotation bounds the files kept; pages run across them", async () => {
  const log = await AuditLog.open(options({ fileBytesMax: 300, filesMax: 2 }));
  for (let i = 0; i < 40; i++) {
    await log.append({
      principal: "ops",
      action: "adminResolveTransaction",
      reason: "x".repeat(20),
    });
  }
  const files = (await readdir(dir)).sort();
  assert.equal(files.length, 3, files.join(", "));
  const seqs = await all(log, 4);
  // The oldest files are gone; what is kept is contiguous and ends at the last record.
  assert.equal(seqs.at(-1), 40);
  assert.deepEqual(
    seqs,
    Array.from({ length: seqs.length }, (_, i) => 41 - seqs.length + i),
  );
  await log.close();
});

test("a reopened log continues; a torn last line is cut", async () => {
  let log = await AuditLog.open(options({}));
  await log.append({ principal: "ops", action: "one" });
  await log.append({ principal: "ops", action: "two" });
  await log.close();
  await appendFile(join(dir, "audit.jsonl"), '{"seq":3,"at":"2026-');
  log = await AuditLog.open(options({}));
  const three = await log.append({ principal: null, action: "three" });
  assert.equal(three.seq, 3);
  const { records } = await log.page(0, 10);
  assert.deepEqual(
    records.map((r) => [r.seq, r.action]),
    [
      [1, "one"],
      [2, "two"],
      [3, "three"],
    ],
  );
  await log.close();
});

test("appends beyond pendingMax are refused", async () => {
  const log = await AuditLog.open(options({ pendingMax: 2 }));
  const a = log.append({ principal: "ops", action: "a" });
  const b = log.append({ principal: "ops", action: "b" });
  await assert.rejects(log.append({ principal: "ops", action: "c" }), AuditQueueFullError);
  await Promise.all([a, b]);
  await log.close();
});
