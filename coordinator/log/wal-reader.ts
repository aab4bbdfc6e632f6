/**
 * A read-only walk over a WAL directory, for inspecting a log offline (`verdict log dump`).
 * It reads what opening the log would read and checks every record the same way
 * (wal-files.ts), but where opening repairs — cuts a torn tail, removes temp files,
 * superseded snapshots and covered segments — or refuses with a LogCorruptionError, it
 * reports a finding and changes nothing. It is given only `list` and `readFile`, and
 * anything reached through a full Storage that would write throws, so it cannot write.
 *
 * Safe while a node runs: every file is read whole at one moment. A running node may
 * still be appending to the last segment (its tail can then look torn) or compacting
 * (a listed file can vanish before it is read); both are reported, never fatal.
 */
import { AssertionError } from "node:assert";
import { fixedLimits } from "../config/limits.js";
import { isCode } from "./node-storage.js";
import { joinPath } from "./storage.js";
import type { Storage } from "./storage.js";
import { classifyName, parseSegment, validFrameAfter } from "./wal-files.js";
import { readSnapshot } from "./wal-io.js";

/** The two calls that read; nothing else is ever asked of the disk. */
export type ReadOnlyStorage = Pick<Storage, "list" | "readFile">;

export interface WalReadLimits {
  /** Above any configured `recordBytesMax`: a dump must read what any node wrote. */
  readonly recordBytesMax: number;
  readonly snapshotBytesMax: number;
}

export const walReadDefaults: WalReadLimits = {
  recordBytesMax: fixedLimits.recordBytesReadMax,
  snapshotBytesMax: 1024 * 1024 * 1024,
};

/** Something opening the log would act on; `file` is a path inside the directory. */
export type WalFinding =
  /** The last segment ends in an incomplete or damaged record: opening would cut it. */
  | {
      readonly kind: "torn-tail";
      readonly file: string;
      readonly offsetBytes: number;
      readonly bytesAfter: number;
      readonly reason: string;
    }
  /** Damage opening would refuse (LogCorruptionError); nothing after it is read. */
  | {
      readonly kind: "corruption";
      readonly file: string;
      readonly offsetBytes: number;
      readonly reason: string;
    }
  /** A snapshot that does not read back: opening skips it for an older one. */
  | { readonly kind: "unreadable-snapshot"; readonly file: string; readonly reason: string }
  /** Removed by opening: an older snapshot, a temp file, a segment the snapshot covers. */
  | { readonly kind: "superseded-snapshot"; readonly file: string }
  | { readonly kind: "temp-file"; readonly file: string }
  | { readonly kind: "covered-segment"; readonly file: string }
  /** A name the log does not own: opening leaves it alone. */
  | { readonly kind: "unknown-file"; readonly file: string }
  /** Listed, then gone when read: a running node compacted it meanwhile (a segment ends the walk). */
  | { readonly kind: "vanished"; readonly file: string };

export type WalReadEvent =
  | {
      readonly kind: "snapshot";
      readonly file: string;
      readonly index: number;
      readonly term: number;
      readonly data: Uint8Array;
    }
  | {
      readonly kind: "entry";
      readonly file: string;
      readonly index: number;
      readonly term: number;
      readonly payload: Uint8Array;
    }
  | { readonly kind: "finding"; readonly finding: WalFinding };

/**
 * Yields the snapshot in use (if any), then every entry after it in index order, with
 * findings where they occur. Holds one segment in memory at a time.
 */
export async function* readWalReadOnly(
  storage: ReadOnlyStorage,
  dir: string,
  limits: WalReadLimits = walReadDefaults,
): AsyncGenerator<WalReadEvent, void, undefined> {
  const disk = readOnly(storage);
  const finding = (f: WalFinding): WalReadEvent => ({ kind: "finding", finding: f });
  const names = (await disk.list(dir)).sort().map(classifyName);
  for (const entry of names) {
    if (entry.kind === "temp")
      yield finding({ kind: "temp-file", file: joinPath(dir, entry.name) });
    if (entry.kind === "unknown")
      yield finding({ kind: "unknown-file", file: joinPath(dir, entry.name) });
  }

  let base = 0;
  let baseTerm = 0;
  let found = false;
  const snapshots = names
    .flatMap((e) => (e.kind === "snapshot" ? [e] : []))
    .sort((a, b) => b.index - a.index);
  for (const candidate of snapshots) {
    const file = joinPath(dir, candidate.name);
    if (found) {
      yield finding({ kind: "superseded-snapshot", file });
      continue;
    }
    const read = await ifPresent(() =>
      readSnapshot(disk, file, candidate.index, limits.snapshotBytesMax),
    );
    if (read === undefined) yield finding({ kind: "vanished", file });
    else if ("problem" in read)
      yield finding({ kind: "unreadable-snapshot", file, reason: read.problem });
    else {
      found = true;
      base = candidate.index;
      baseTerm = read.term;
      yield { kind: "snapshot", file, index: candidate.index, term: read.term, data: read.data };
    }
  }

  const segments = names
    .flatMap((e) => (e.kind === "segment" ? [e] : []))
    .sort((a, b) => a.firstIndex - b.firstIndex);
  let previous = { lastIndex: base, lastTerm: baseTerm };
  for (const [i, segment] of segments.entries()) {
    const file = joinPath(dir, segment.name);
    const expected = previous.lastIndex + 1;
    if (i === 0 ? segment.firstIndex > expected : segment.firstIndex !== expected) {
      yield finding({
        kind: "corruption",
        file,
        offsetBytes: 0,
        reason: `segment starts at index ${segment.firstIndex}, expected ${expected}`,
      });
      return;
    }
    const bytes = await ifPresent(() => disk.readFile(file));
    if (bytes === undefined) {
      // Compacted away meanwhile: what follows would look like a gap, so stop here.
      yield finding({ kind: "vanished", file });
      return;
    }
    const entries: WalReadEvent[] = [];
    const parse = parseSegment(
      bytes,
      segment.firstIndex,
      previous.lastTerm,
      limits.recordBytesMax,
      (frame) => {
        if (frame.index > base) {
          entries.push({
            kind: "entry",
            file,
            index: frame.index,
            term: frame.term,
            payload: frame.payload,
          });
        }
      },
    );
    if (parse.lastIndex <= base && parse.problem === undefined)
      yield finding({ kind: "covered-segment", file });
    yield* entries;
    if (parse.problem !== undefined) {
      // The same test as opening: only the last segment may end torn, and only when no
      // valid record follows the damage (else cutting would lose acknowledged entries).
      const isFinal = i === segments.length - 1;
      const after =
        isFinal && parse.problem.mayBeTorn
          ? validFrameAfter(bytes, parse.validBytes, parse.lastIndex, limits.recordBytesMax)
          : undefined;
      if (!isFinal || !parse.problem.mayBeTorn || after !== undefined) {
        const follows = after === undefined ? "" : `; a valid record follows at offset ${after}`;
        yield finding({
          kind: "corruption",
          file,
          offsetBytes: parse.validBytes,
          reason: `${parse.problem.reason}${follows}`,
        });
        return;
      }
      yield finding({
        kind: "torn-tail",
        file,
        offsetBytes: parse.validBytes,
        bytesAfter: bytes.byteLength - parse.validBytes,
        reason: parse.problem.reason,
      });
    }
    previous = { lastIndex: parse.lastIndex, lastTerm: parse.lastTerm ?? previous.lastTerm };
  }
}

/** `undefined` when the file is gone (ENOENT); any other error passes. */
async function ifPresent<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (isCode(error, "ENOENT")) return undefined;
    throw error;
  }
}

/** A Storage for helpers that take one: reads pass through, any write is a bug here. */
function readOnly(storage: ReadOnlyStorage): Storage {
  const refuse = (operation: string) => (): never => {
    throw new AssertionError({ message: `wal-reader: ${operation} on a read-only walk` });
  };
  return {
    list: (dir) => storage.list(dir),
    readFile: (path) => storage.readFile(path),
    mkdirp: refuse("mkdirp"),
    open: refuse("open"),
    rename: refuse("rename"),
    unlink: refuse("unlink"),
    syncDir: refuse("syncDir"),
  };
}
