/**
 * What etcd itself says a cluster did: every event under `/verdict/<clusterId>/` since the
 * cluster began, replayed from etcd's own history (a watch from revision 1; the private etcd
 * of these tests never compacts), and checked:
 * - every `log/<i>` was written once (version 1: never overwritten) and the batches follow
 *   one another without a gap or an overlap;
 * - every batch was appended by the term that held the election key at that revision: a
 *   deposed leader appended nothing after its key was gone (its term no longer matches);
 * - batch terms never decrease along the log;
 * - a `log/<i>` is deleted only at or below the snapshot pointer in force.
 * The terms (who led, from which revision) come back with it, for the tests' own asserts.
 */
import type { Etcd3, IEvent } from "etcd3";
import { decodeBatch } from "../../coordinator/log/etcd/batch-codec.js";
import { EtcdLayout } from "../../coordinator/log/etcd/layout.js";

/** Bounds the replay of a long soak (events, not bytes). */
const eventsMax = 5_000_000;
const replayTimeoutMs = 60_000;

export interface LedgerTerm {
  readonly term: number;
  readonly nodeId: string;
  /** Batches it appended. */
  batches: number;
  /** The revision its key was deleted at, if it was. */
  endedAt?: number;
}

export interface Ledger {
  readonly violations: string[];
  readonly terms: readonly LedgerTerm[];
  /** Index of the last record appended. */
  readonly lastIndex: number;
  readonly batches: number;
  readonly snapshots: number;
}

/**
 * Every event under the cluster's prefix from revision 1 up to now, in revision order. A
 * watch response's header names the store's revision, not how far the replay got, so the
 * end is marked by a sentinel key put under the prefix first: the replay is complete when
 * its event arrives (no node reads that key).
 */
async function history(client: Etcd3, layout: EtcdLayout): Promise<IEvent[]> {
  const sentinel = `${layout.prefix}zz-ledger-end`;
  const put = await client.put(sentinel).value("end").exec();
  const upTo = Number(put.header.revision);
  const events: IEvent[] = [];
  const watcher = await client.watch().prefix(layout.prefix).startRevision("1").create();
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`etcd history not replayed within ${replayTimeoutMs} ms`)),
        replayTimeoutMs,
      );
      watcher.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      watcher.on("data", (res) => {
        if (events.length + res.events.length > eventsMax) {
          clearTimeout(timer);
          reject(new Error(`more than ${eventsMax} etcd events`));
          return;
        }
        events.push(...res.events);
        if (res.events.some((e) => Number(e.kv.mod_revision) >= upTo)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } finally {
    await watcher.cancel();
  }
  return events.filter((e) => Number(e.kv.mod_revision) < upTo);
}

export async function readLedger(client: Etcd3, clusterId: string): Promise<Ledger> {
  const layout = new EtcdLayout(clusterId);
  const violations: string[] = [];
  const terms: LedgerTerm[] = [];
  let leader: LedgerTerm | undefined;
  let nextIndex: number | undefined;
  let lastTerm = 0;
  let pointerIndex = 0;
  let batches = 0;
  let snapshots = 0;
  const logPrefix = layout.logPrefix.toString();
  for (const e of await history(client, layout)) {
    const key = e.kv.key.toString();
    const at = Number(e.kv.mod_revision);
    if (key === layout.leader.toString()) {
      if (e.type === "Delete") {
        if (leader) leader.endedAt = at;
        leader = undefined;
      } else if (e.kv.version === "1") {
        const value = JSON.parse(e.kv.value.toString()) as { nodeId?: string };
        leader = { term: Number(e.kv.create_revision), nodeId: value.nodeId ?? "?", batches: 0 };
        terms.push(leader);
      }
    } else if (key === layout.snapshotPointer.toString() && e.type === "Put") {
      snapshots += 1;
      pointerIndex = (JSON.parse(e.kv.value.toString()) as { index: number }).index;
    } else if (key.startsWith(logPrefix)) {
      const index = layout.indexOfLogKey(e.kv.key);
      if (e.type === "Delete") {
        if (index > pointerIndex) {
          violations.push(`log/${index} deleted at r${at} above the snapshot at ${pointerIndex}`);
        }
        continue;
      }
      batches += 1;
      if (e.kv.version !== "1") violations.push(`log/${index} overwritten at r${at}`);
      const decoded = decodeBatch(e.kv.value);
      if (decoded.status !== "ok") {
        violations.push(`log/${index} at r${at} does not decode: ${decoded.reason}`);
        continue;
      }
      const b = decoded.batch;
      if (b.firstIndex !== index) violations.push(`log/${index} holds index ${b.firstIndex}`);
      if (nextIndex !== undefined && index !== nextIndex) {
        violations.push(`log/${index} at r${at}: expected the next batch at ${nextIndex}`);
      }
      nextIndex = index + b.payloads.length;
      if (b.term < lastTerm) violations.push(`log/${index}: term ${b.term} after ${lastTerm}`);
      lastTerm = Math.max(lastTerm, b.term);
      if (leader?.term !== b.term) {
        violations.push(
          `log/${index} appended at r${at} by term ${b.term}, while the election key ` +
            `was ${leader ? `term ${leader.term} (${leader.nodeId})` : "absent"}`,
        );
      } else {
        leader.batches += 1;
      }
    }
  }
  return { violations, terms, lastIndex: (nextIndex ?? 1) - 1, batches, snapshots };
}
