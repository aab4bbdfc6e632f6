/** Shared fixtures of the WAL tests: entries with recognisable payloads, and opening a WAL on a MemoryDisk. */
import { MemoryDisk } from "../../../coordinator/log/memory-storage.js";
import { Wal } from "../../../coordinator/log/wal.js";
import type { WalEntry, WalOptions } from "../../../coordinator/log/wal.js";

export const walDir = "/data/wal";
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** `count` consecutive entries from `firstIndex`, payload `<tag><index>`. */
export function makeEntries(firstIndex: number, count: number, term = 1, tag = "e"): WalEntry[] {
  return Array.from({ length: count }, (_, i) => ({
    index: firstIndex + i,
    term,
    payload: utf8.encode(`${tag}${firstIndex + i}`),
  }));
}

export function payloadText(entry: WalEntry): string {
  return fromUtf8.decode(entry.payload);
}

export async function openWal(
  disk: MemoryDisk,
  options: Partial<Omit<WalOptions, "storage" | "dir">> = {},
) {
  return await Wal.open({ storage: disk.storage(), dir: walDir, ...options });
}

/** The payloads a WAL replays, after its snapshot. */
export async function replayTexts(wal: Wal): Promise<string[]> {
  const { entries } = await wal.readAll();
  return entries.map(payloadText);
}

/** Names in the WAL directory, sorted. */
export async function listWal(disk: MemoryDisk): Promise<string[]> {
  return (await disk.storage().list(walDir)).sort();
}

export { MemoryDisk };
