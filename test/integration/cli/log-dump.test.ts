/**
 * `verdict log dump` (the compiled CLI) reads a decision log without changing it:
 * - on the data directory of a real node that committed, aborted and lost a vote (then
 *   stopped), every transaction appears with its branches and its decision, every index in
 *   order, and every file of the data directory is byte-identical afterwards;
 * - it reads a running node's log too (exit 0, the transactions listed);
 * - --from/--to bound the entries; --json prints one object per line;
 * - a torn tail (garbage appended to the last segment of a copy) is reported and left in
 *   place, at the offset where the real open path then cuts it; a damaged record with valid
 *   records after it is reported as corruption (exit 1), also unrepaired, and the real open
 *   path refuses that log;
 * - a snapshot is summarised with its transactions; a record type this build does not know
 *   and a payload that is not JSON are shown raw, not refused;
 * - bad usage exits 2, a directory without a log exits 1.
 */
import assert from "node:assert/strict";
import { appendFile, cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { TransactionAbortedError } from "../../../client/index.js";
import type { LogRecord } from "../../../coordinator/core/records.js";
import { TxnTable } from "../../../coordinator/core/table.js";
import { jsonCodec } from "../../../coordinator/log/decision-log.js";
import { LogCorruptionError } from "../../../coordinator/log/errors.js";
import { NodeStorage } from "../../../coordinator/log/node-storage.js";
import { Wal } from "../../../coordinator/log/wal.js";
import { describeExit } from "../../support/process-node.js";
import { hashTree, runCli, shown, type CliResult } from "./cli.js";
import { startCliNode, type CliNode } from "./fixture.js";

let n: CliNode;
let dataDir: string;
let scratch: string;
/** xid → the decision the node took. */
const expected = new Map<string, "commit" | "abort">();
let whileRunning: CliResult;

interface JsonLine {
  kind: string;
  index?: number;
  type?: string;
  xids?: string[];
  summary?: string;
  record?: { decision?: string; code?: string } | null;
  finding?: string;
  file?: string;
  offsetBytes?: number;
  bytesAfter?: number;
  entries?: number;
  transactions?: { xid: string; state: string; decision?: string }[];
}

const dump = (dir: string, ...extra: string[]) =>
  runCli(["log", "dump", "--data-dir", dir, ...extra]);

function jsonLines(r: CliResult): JsonLine[] {
  return r.stdout
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as JsonLine);
}

/** The last segment file of a log directory. */
async function lastSegment(logDir: string): Promise<string> {
  const segments = (await readdir(logDir)).filter((f) => f.endsWith(".wal")).sort();
  const last = segments.at(-1);
  assert.ok(last, `no segment in ${logDir}`);
  return join(logDir, last);
}

describe("verdict log dump", () => {
  before(async () => {
    n = await startCliNode();
    dataDir = n.cluster.dataDir;
    scratch = await mkdtemp(join(tmpdir(), "verdict-dump-"));
    for (let i = 0; i < 2; i++) {
      const xid = await n.transfer();
      await n.client.commit(xid);
      expected.set(xid, "commit");
    }
    const aborted = await n.transfer();
    await n.client.prepare(aborted);
    await n.client.abort(aborted);
    expected.set(aborted, "abort");
    const { xid: refused } = await n.client.begin({ timeoutMs: 60_000 });
    await n.client.enlist(refused, {
      participant: "pg-a",
      statements: [
        { sql: `update ${n.accounts.table} set balance = 0 where id = 99`, expectRows: 1 },
      ],
    });
    await assert.rejects(n.client.commit(refused), TransactionAbortedError);
    expected.set(refused, "abort");

    whileRunning = await dump(dataDir);
    n.node.kill("SIGTERM");
    const exit = await n.node.exited;
    assert.ok(exit.code === 0 || exit.signal === "SIGTERM", describeExit(exit));
  });
  after(async () => {
    await n?.destroy();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  test("a running node's log reads too", () => {
    assert.equal(whileRunning.code, 0, shown(whileRunning));
    for (const xid of expected.keys()) assert.ok(whileRunning.stdout.includes(xid), xid);
  });

  test("every transaction appears with its branches and decision; nothing changes", async () => {
    const before = await hashTree(dataDir);
    const r = await dump(dataDir);
    const j = await dump(dataDir, "--json");
    assert.deepEqual(await hashTree(dataDir), before, "every file byte-identical after the dump");
    assert.equal(r.code, 0, shown(r));
    assert.equal(j.code, 0, shown(j));
    assert.equal(r.stderr, "");

    const lines = r.stdout.split("\n");
    assert.equal(lines[0], `decision log ${join(dataDir, "log")} (read only)`);
    for (const [xid, decision] of expected) {
      const decide = lines.filter((l) => / decide +/.test(l) && l.includes(xid));
      assert.equal(decide.length, 1, `one decide line for ${xid}:\n${r.stdout}`);
      assert.match(
        decide[0] ?? "",
        new RegExp(`^\\s+\\d+  t1  \\S+Z  decide +${xid}  ${decision} `),
      );
      const preparing = lines.find((l) => / preparing /.test(l) && l.includes(xid));
      if (preparing !== undefined) {
        assert.match(preparing, /branch\(es\): 1 pg-a \(postgres\)/);
      }
    }
    assert.ok(
      lines.some((l) =>
        / preparing .*2 branch\(es\): 1 pg-a \(postgres\), 2 pg-b \(postgres\)/.test(l),
      ),
      r.stdout,
    );
    assert.match(r.stdout, / vote-no\b/);
    assert.match(r.stdout, / acks +\S+ +#\d done(, #\d done)?$/m);

    const entries = jsonLines(j).filter((l) => l.kind === "entry");
    assert.deepEqual(
      entries.map((e) => e.index),
      entries.map((_, i) => i + 1),
      "every index from 1, in order",
    );
    for (const [xid, decision] of expected) {
      const decide = entries.filter((e) => e.type === "decide" && e.xids?.includes(xid));
      assert.equal(decide.length, 1, xid);
      assert.equal(decide[0]?.record?.decision, decision, xid);
    }
    const end = jsonLines(j).at(-1);
    assert.deepEqual(end, {
      kind: "end",
      entries: entries.length,
      firstIndex: 1,
      lastIndex: entries.length,
    });
    assert.match(
      r.stdout,
      new RegExp(`^${entries.length} entries, index 1 to ${entries.length}$`, "m"),
    );
  });

  test("--from and --to bound the entries", async () => {
    const r = await dump(dataDir, "--from", "2", "--to", "3", "--json");
    assert.equal(r.code, 0, shown(r));
    assert.deepEqual(
      jsonLines(r)
        .filter((l) => l.kind === "entry")
        .map((e) => e.index),
      [2, 3],
    );
  });

  test("a torn tail is reported, not cut", async () => {
    const copy = join(scratch, "torn");
    await cp(dataDir, copy, { recursive: true });
    const segment = await lastSegment(join(copy, "log"));
    const sizeBytes = (await stat(segment)).size;
    await appendFile(segment, Buffer.from([1, 2, 3, 4, 5, 6, 7]));
    const before = await hashTree(copy);
    const r = await dump(copy);
    const j = await dump(copy, "--json");
    assert.deepEqual(await hashTree(copy), before, "the torn tail is still there");
    assert.equal((await stat(segment)).size, sizeBytes + 7);
    assert.equal(r.code, 0, shown(r));
    assert.ok(
      r.stdout.includes(
        `torn tail: ${segment} at byte offset ${sizeBytes}: incomplete record; 7 byte(s) after`,
      ),
      r.stdout,
    );
    const torn = jsonLines(j).find((l) => l.kind === "finding");
    assert.deepEqual(
      {
        finding: torn?.finding,
        file: torn?.file,
        offsetBytes: torn?.offsetBytes,
        bytesAfter: torn?.bytesAfter,
      },
      { finding: "torn-tail", file: segment, offsetBytes: sizeBytes, bytesAfter: 7 },
    );
    for (const xid of expected.keys()) assert.ok(r.stdout.includes(xid), "entries before it read");
    // The dump agrees with the real open path, which does cut the tail at the same offset.
    const { wal, recovery } = await Wal.open({
      storage: new NodeStorage(),
      dir: join(copy, "log"),
    });
    await wal.close();
    assert.equal(recovery.truncatedTail?.offsetBytes, sizeBytes);
    assert.equal((await stat(segment)).size, sizeBytes);
  });

  test("damage with valid records after it is corruption: exit 1, nothing repaired", async () => {
    const copy = join(scratch, "corrupt");
    await cp(dataDir, copy, { recursive: true });
    const segment = await lastSegment(join(copy, "log"));
    const bytes = await readFile(segment);
    bytes[30] = (bytes[30] ?? 0) ^ 0xff; // inside the first record's payload: its CRC fails
    await writeFile(segment, bytes);
    const before = await hashTree(copy);
    const r = await dump(copy);
    assert.deepEqual(await hashTree(copy), before);
    assert.equal(r.code, 1, shown(r));
    assert.match(
      r.stdout,
      /CORRUPTION: .*\.wal at byte offset 0: CRC mismatch; a valid record follows at offset \d+/,
    );
    await assert.rejects(
      Wal.open({ storage: new NodeStorage(), dir: join(copy, "log") }),
      LogCorruptionError,
      "the real open path refuses this log too",
    );
  });

  test("a snapshot is summarised; unknown record types and non-JSON payloads are shown raw", async () => {
    const dir = join(scratch, "synthetic", "log");
    const { wal } = await Wal.open({ storage: new NodeStorage(), dir });
    const codec = jsonCodec<unknown>();
    const header = { xid: "x-snap", principal: "p", beganAtMs: 0, deadlineMs: 60_000, labels: {} };
    const branch = (k: number) => ({
      n: k,
      branchId: `c:x-snap:${k}`,
      participant: `pg-${k}`,
      kind: "postgres",
      payload: {},
    });
    const records = [
      {
        type: "preparing",
        v: 1,
        txn: header,
        branches: [branch(1), branch(2)],
        onePhase: false,
        atMs: 1,
      },
      {
        type: "decide",
        v: 1,
        xid: "x-snap",
        decision: "commit",
        code: "all-voted-yes",
        reason: "yes",
        atMs: 2,
      },
      {
        type: "acks",
        v: 1,
        acks: [
          { xid: "x-snap", n: 1, outcome: "done" },
          { xid: "x-snap", n: 2, outcome: "done" },
        ],
        atMs: 3,
      },
    ] as unknown as LogRecord[];
    const table = new TxnTable();
    records.forEach((record, i) => table.apply({ index: i + 1, term: 1, record } as never));
    await wal.append(records.map((r, i) => ({ index: i + 1, term: 1, payload: codec.encode(r) })));
    await wal.saveSnapshot({ index: 3, term: 1, data: table.snapshot() });
    await wal.append([
      {
        index: 4,
        term: 2,
        payload: codec.encode({ type: "forget", v: 1, xids: ["x-snap"], atMs: 4 }),
      },
      { index: 5, term: 2, payload: codec.encode({ type: "fence-v9", v: 9, epoch: 7, atMs: 5 }) },
      { index: 6, term: 2, payload: Buffer.from([0xff, 0xfe, 0x00]) },
    ]);
    await wal.close();

    const before = await hashTree(dir);
    const r = await dump(join(scratch, "synthetic"));
    assert.deepEqual(await hashTree(dir), before);
    assert.equal(r.code, 0, shown(r));
    assert.match(r.stdout, /^snapshot at index 3 \(term 1\): 1 transaction\(s\)$/m);
    assert.match(
      r.stdout,
      /^ {2}x-snap {2}committed {2}commit all-voted-yes {2}2 branch\(es\), 2 acknowledged$/m,
    );
    assert.match(
      r.stdout,
      /^\s+4 {2}t2 {2}1970-01-01T00:00:00\.004Z {2}forget +x-snap {2}forget 1 transaction\(s\)$/m,
    );
    assert.match(
      r.stdout,
      /^\s+5 {2}t2 {2}\S+ {2}fence-v9 +- {2}raw \{"type":"fence-v9","v":9,"epoch":7,"atMs":5\}$/m,
    );
    assert.match(r.stdout, /^\s+6 {2}t2 {2}- +undecodable {2}- {2}3 bytes, not JSON .*: fffe00$/m);
    assert.match(r.stdout, /^3 entries, index 4 to 6$/m);
    assert.doesNotMatch(r.stdout, /^\s+[123] {2}t1/m, "entries the snapshot covers are not listed");
  });

  test("bad usage exits 2; a directory without a log exits 1", async () => {
    for (const args of [
      ["log", "dump"],
      ["log", "dump", "--data-dir", dataDir, "--from", "x"],
      ["log", "dump", "--data-dir", dataDir, "--from", "5", "--to", "2"],
      ["log", "tail", "--data-dir", dataDir],
    ]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${shown(r)}`);
      assert.match(r.stderr, /usage: verdict log dump/);
    }
    const empty = await mkdtemp(join(scratch, "empty-"));
    const r = await dump(empty);
    assert.equal(r.code, 1, shown(r));
    assert.match(r.stderr, /^no decision log in /);
    assert.deepEqual(await readdir(empty), [], "nothing created");
  });
});
