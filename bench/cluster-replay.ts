/**
 * Takeover replay cost (docs/bench-cluster.md, "Replay"): how long a new leader's takeover
 * read takes at a given log length, one entry per log key (light load: every append its own
 * Txn), and applying those entries to a transaction table. Each transaction is three entries
 * of the shapes a 2-branch PostgreSQL transfer logs (`preparing`, `decide`, `acks`).
 *
 *   VERDICT_ETCD_ENDPOINTS=HOST:PORT[,…] node dist/bench/cluster-replay.js [--entries N] [--steps K]
 *
 * Measured at K evenly spaced lengths up to N: the replay as built (pages that grow while
 * the values are small) and the same read in fixed pages of `pageKeys` keys (the count that
 * fits the reply limit at the largest values: the takeover read before it grew its pages).
 * Use a private etcd: it writes N keys under a fresh cluster id (deleted at the end), directly
 * (`log/<i>` as the log's appends write them, many at once: one append at a time would take
 * minutes at 100,000 entries), after this bench's node campaigned, as an earlier term's.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Etcd3 } from "etcd3";
import type { BranchId, BranchNo, LogIndex, Term, Xid } from "../coordinator/core/ids.js";
import type { LogRecord } from "../coordinator/core/records.js";
import { TxnTable } from "../coordinator/core/table.js";
import { jsonCodec } from "../coordinator/log/decision-log.js";
import { encodeBatch } from "../coordinator/log/etcd/batch-codec.js";
import { connectEtcd, connectionDefaults } from "../coordinator/log/etcd/client.js";
import { EtcdDecisionLog } from "../coordinator/log/etcd/etcd-decision-log.js";
import { EtcdLayout, prefixEnd } from "../coordinator/log/etcd/layout.js";
import { Leadership, leadershipDefaults } from "../coordinator/log/etcd/leadership.js";
import { parseOptions, runMain, say } from "./args.js";

const spec = {
  entries: { default: 100_000, min: 3, max: 1_000_000, help: "log entries at the end" },
  steps: { default: 4, min: 1, max: 20, help: "lengths measured (evenly spaced)" },
} as const;

/** Log keys written at once while filling the log. */
const putsInFlight = 64;

function transaction(n: number): LogRecord[] {
  const xid = `c1:bench-${n}` as Xid;
  const branch = (i: number, participant: string) => ({
    n: i as BranchNo,
    branchId: `${xid}:${i}` as BranchId,
    participant,
    kind: "postgres" as const,
    payload: {
      kind: "statements" as const,
      statements: [{ sql: "update bench_accounts set balance = balance + $1 where id = $2" }],
    },
  });
  const txn = { xid, principal: "bench", beganAtMs: n, deadlineMs: n + 30_000, labels: {} };
  return [
    {
      type: "preparing",
      v: 1,
      txn,
      branches: [branch(1, "pg-a"), branch(2, "pg-b")],
      onePhase: false,
      atMs: n,
    },
    {
      type: "decide",
      v: 1,
      xid,
      decision: "commit",
      code: "all-voted-yes",
      reason: "yes",
      atMs: n,
    },
    {
      type: "acks",
      v: 1,
      acks: [
        { xid, n: 1 as BranchNo, outcome: "done" },
        { xid, n: 2 as BranchNo, outcome: "done" },
      ],
      atMs: n,
    },
  ] as LogRecord[];
}

async function main(argv: string[]): Promise<number> {
  const o = parseOptions("node dist/bench/cluster-replay.js", spec, argv);
  const endpoints = (process.env.VERDICT_ETCD_ENDPOINTS ?? "127.0.0.1:52379").split(",");
  const client = connectEtcd({ endpoints, ...connectionDefaults });
  const layout = new EtcdLayout(`replay-${randomUUID().slice(0, 8)}`);
  const leadership = new Leadership({
    client,
    layout,
    nodeId: "bench",
    url: "http://bench.invalid",
    ...leadershipDefaults,
  });
  try {
    const term = await leadership.campaign();
    if (term === undefined) throw new Error("could not lead");
    const log = await EtcdDecisionLog.open<LogRecord>({
      client,
      layout,
      leadership,
      replyBytesMax: connectionDefaults.replyBytesMax,
    });
    say(`etcd ${endpoints.join(",")}, cluster id ${layout.clusterId}, one entry per log key`);
    say(
      "entries | log keys | replay ms (growing pages) | apply ms | fixed pages ms | ranges fixed",
    );
    let written = 0;
    for (let step = 1; step <= o.steps; step++) {
      const target = Math.floor((o.entries * step) / o.steps);
      written = await fill(client, layout, term, written, target);
      const t0 = performance.now();
      const read = await log.replay();
      const t1 = performance.now();
      const table = new TxnTable();
      for (const e of read.entries)
        table.apply({ index: e.index as LogIndex, term: e.term as Term, record: e.record });
      const t2 = performance.now();
      const fixed = await fixedPages(client, layout);
      say(
        `${target} | ${fixed.keys} | ${Math.round(t1 - t0)} | ${Math.round(t2 - t1)} | ` +
          `${Math.round(fixed.ms)} | ${fixed.ranges}`,
      );
    }
  } finally {
    await client
      .delete()
      .prefix(layout.prefix.toString())
      .catch(() => undefined);
    await leadership.resign();
    leadership.close();
    client.close();
  }
  return 0;
}

/** Writes log/<i> for i in (from, to], one entry each, of transactions of three entries. */
async function fill(
  client: Etcd3,
  layout: EtcdLayout,
  term: number,
  from: number,
  to: number,
): Promise<number> {
  const codec = jsonCodec<LogRecord>();
  const put = (index: number) => {
    const record = transaction(Math.floor((index - 1) / 3))[(index - 1) % 3] as LogRecord;
    const value = encodeBatch({ term, firstIndex: index, payloads: [codec.encode(record)] });
    return client.put(layout.logKey(index)).value(value).exec();
  };
  for (let i = from + 1; i <= to; i += putsInFlight) {
    const last = Math.min(to, i + putsInFlight - 1);
    await Promise.all(Array.from({ length: last - i + 1 }, (_, k) => put(i + k)));
  }
  return to;
}

/** The log read in fixed pages of 63 keys (64 MiB / (1 MiB + 16 KiB)), at one revision. */
async function fixedPages(
  client: Etcd3,
  layout: EtcdLayout,
): Promise<{ ms: number; ranges: number; keys: number }> {
  const t0 = performance.now();
  const end = prefixEnd(layout.logPrefix);
  let from = layout.logPrefix;
  let ranges = 1;
  let keys = 0;
  const first = await client.kv.range({ key: layout.snapshotPointer });
  const revision = first.header.revision;
  for (;;) {
    ranges++;
    const res = await client.kv.range({ key: from, range_end: end, revision, limit: 63 });
    keys += res.kvs.length;
    const last = res.kvs.at(-1);
    if (!res.more || last === undefined) break;
    from = Buffer.concat([last.key, Buffer.from([0])]);
  }
  return { ms: performance.now() - t0, ranges, keys };
}

runMain(main);
