/**
 * Opening a WAL directory after a clean stop or a crash: drop snapshot temp files, load
 * the newest valid snapshot, scan every segment in order (CRC, index continuity, terms),
 * cut a torn tail of the last segment (durably), remove what the snapshot covers.
 * Anything else that is wrong refuses to open with a LogCorruptionError naming the file
 * and byte offset: a log that guesses can forget a decision.
 */
import { LogCorruptionError } from "./errors.js";
import { joinPath } from "./storage.js";
import type { Storage } from "./storage.js";
import { TermRuns } from "./term-runs.js";
import { classifyName, parseSegment, validFrameAfter } from "./wal-files.js";
import type { SegmentState, SnapshotState } from "./wal-files.js";
import { readSnapshot } from "./wal-io.js";

/** What opening found and did; also logged. */
export interface RecoveryReport {
  readonly snapshotIndex: number | undefined;
  readonly lastIndex: number;
  readonly truncatedTail:
    | {
        readonly file: string;
        readonly offsetBytes: number;
        readonly bytesCut: number;
        readonly reason: string;
      }
    | undefined;
  /** Snapshot temp files, superseded snapshots, segments the snapshot covers. */
  readonly removedFiles: readonly string[];
  /** Unreadable snapshots (skipped for an older one) and names the WAL does not own. */
  readonly ignoredFiles: readonly string[];
}

/** pino-compatible. */
export interface WalLogger {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

export interface RecoveryLimits {
  readonly recordBytesMax: number;
  readonly snapshotBytesMax: number;
}

export interface RecoveredWal {
  readonly snapshot: SnapshotState | undefined;
  readonly segments: SegmentState[];
  readonly terms: TermRuns;
  readonly report: RecoveryReport;
}

export async function recoverWal(
  storage: Storage,
  dir: string,
  limits: RecoveryLimits,
  logger: WalLogger | undefined,
): Promise<RecoveredWal> {
  await storage.mkdirp(dir);
  const names = (await storage.list(dir)).map(classifyName);
  const removed: string[] = [];
  const ignored: string[] = [];
  for (const entry of names) {
    if (entry.kind === "temp") {
      await storage.unlink(joinPath(dir, entry.name));
      removed.push(entry.name);
    }
    if (entry.kind === "unknown") ignored.push(entry.name);
  }

  let snapshot: SnapshotState | undefined;
  const snapshots = names
    .flatMap((e) => (e.kind === "snapshot" ? [e] : []))
    .sort((a, b) => b.index - a.index);
  for (const candidate of snapshots) {
    if (snapshot !== undefined) {
      await storage.unlink(joinPath(dir, candidate.name));
      removed.push(candidate.name);
      continue;
    }
    const path = joinPath(dir, candidate.name);
    const read = await readSnapshot(storage, path, candidate.index, limits.snapshotBytesMax);
    if ("problem" in read) {
      logger?.warn(
        { file: path, reason: read.problem },
        "decision log: skipping an unreadable snapshot",
      );
      ignored.push(candidate.name);
    } else {
      snapshot = { name: candidate.name, index: candidate.index, term: read.term };
    }
  }

  const base = snapshot?.index ?? 0;
  const terms = new TermRuns(base, snapshot?.term ?? 0);
  const segments: SegmentState[] = [];
  let truncatedTail: RecoveryReport["truncatedTail"];
  const found = names
    .flatMap((e) => (e.kind === "segment" ? [e] : []))
    .sort((a, b) => a.firstIndex - b.firstIndex);
  let previous: { lastIndex: number; lastTerm: number } = { lastIndex: base, lastTerm: 0 };
  for (const [i, entry] of found.entries()) {
    const path = joinPath(dir, entry.name);
    const expected = previous.lastIndex + 1;
    if (i === 0 ? entry.firstIndex > expected : entry.firstIndex !== expected) {
      throw new LogCorruptionError(
        path,
        0,
        `segment starts at index ${entry.firstIndex}, expected ${expected}`,
      );
    }
    const bytes = await storage.readFile(path);
    const parse = parseSegment(
      bytes,
      entry.firstIndex,
      previous.lastTerm,
      limits.recordBytesMax,
      (frame) => {
        if (frame.index > base) terms.push(frame.index, frame.term);
      },
    );
    if (parse.problem !== undefined) {
      const isFinal = i === found.length - 1;
      const after =
        isFinal && parse.problem.mayBeTorn
          ? validFrameAfter(bytes, parse.validBytes, parse.lastIndex, limits.recordBytesMax)
          : undefined;
      if (!isFinal || !parse.problem.mayBeTorn || after !== undefined) {
        const follows = after === undefined ? "" : `; a valid record follows at offset ${after}`;
        throw new LogCorruptionError(path, parse.validBytes, `${parse.problem.reason}${follows}`);
      }
      truncatedTail = {
        file: path,
        offsetBytes: parse.validBytes,
        bytesCut: bytes.byteLength - parse.validBytes,
        reason: parse.problem.reason,
      };
      logger?.warn(truncatedTail, "decision log: cutting a torn tail");
    }
    // What we read may sit only in the page cache (a predecessor's fsync failed): sync it
    // before anything new is built on it, or a later crash could open a gap.
    const file = await storage.open(path);
    if (truncatedTail?.file === path) await file.truncate(parse.validBytes);
    await file.datasync();
    await file.close();
    segments.push({
      name: entry.name,
      firstIndex: entry.firstIndex,
      lastIndex: parse.lastIndex,
      sizeBytes: parse.validBytes,
    });
    previous = { lastIndex: parse.lastIndex, lastTerm: parse.lastTerm ?? previous.lastTerm };
  }

  // Segments wholly covered by the snapshot: a crash came between snapshot and compaction.
  while (segments[0] !== undefined && segments[0].lastIndex <= base) {
    const covered = segments.shift();
    if (covered === undefined) break;
    await storage.unlink(joinPath(dir, covered.name));
    removed.push(covered.name);
  }
  // Also makes durable any entry a predecessor created but could not fsync.
  await storage.syncDir(dir);

  const report: RecoveryReport = {
    snapshotIndex: snapshot?.index,
    lastIndex: terms.lastIndex(),
    truncatedTail,
    removedFiles: removed,
    ignoredFiles: ignored,
  };
  logger?.info(report, "decision log: opened");
  return { snapshot, segments, terms, report };
}
