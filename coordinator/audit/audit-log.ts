/**
 * The audit trail: every operator action, every refused admin call and every heuristic
 * outcome, as JSON lines in files of its own beside the decision log (docs/security.md,
 * "Audit trail"). It outlives the decision log's `forget` and snapshots, which compact away
 * the only other record of a resolution.
 *
 * Append-only: each record is written and fdatasynced before the append resolves, one at a
 * time (operator actions are rare; a burst of refused calls queues, bounded). When the
 * current file passes `fileBytesMax` it is renamed `audit-<first seq>.jsonl` and a new one
 * begun; the oldest rotated files beyond `filesMax` are deleted, so the trail's size is
 * bounded by `fileBytesMax × (filesMax + 1)`.
 */
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  truncate,
  type FileHandle,
} from "node:fs/promises";
import { join } from "node:path";

export interface AuditEvent {
  /** Who: a token id, or null when the call carried no valid token. */
  readonly principal: string | null;
  /** What: a route id (`adminResolveTransaction`…) or `heuristic-outcome`. */
  readonly action: string;
  readonly xid?: string;
  readonly branch?: number;
  /** Why: the operator's reason, or what the participant reported. */
  readonly reason?: string;
  /** The HTTP status answered (absent for events the node raised itself). */
  readonly status?: number;
  /** The error code when the call was refused, or the heuristic outcome. */
  readonly code?: string;
  readonly stateBefore?: string;
  readonly stateAfter?: string;
}

export interface AuditRecord extends AuditEvent {
  readonly seq: number;
  /** When, as ISO 8601 UTC. */
  readonly at: string;
}

export interface AuditLogOptions {
  readonly dir: string;
  readonly fileBytesMax: number;
  readonly filesMax: number;
  /** Appends waiting for the disk beyond this are refused (the caller logs them). */
  readonly pendingMax: number;
  readonly nowMs: () => number;
}

const current = "audit.jsonl";
const rotatedName = /^audit-(\d{12})\.jsonl$/;

export class AuditQueueFullError extends Error {
  override readonly name = "AuditQueueFullError";
}

export class AuditLog {
  private nextSeq: number;
  private bytes: number;
  private firstSeqOfCurrent: number;
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;

  private constructor(
    private readonly o: AuditLogOptions,
    private file: FileHandle,
    state: { nextSeq: number; bytes: number; firstSeq: number },
  ) {
    this.nextSeq = state.nextSeq;
    this.bytes = state.bytes;
    this.firstSeqOfCurrent = state.firstSeq;
  }

  static async open(o: AuditLogOptions): Promise<AuditLog> {
    await mkdir(o.dir, { recursive: true });
    const path = join(o.dir, current);
    const { records, validBytes } = await readRecords(path);
    // A torn last line (a crash mid-write) was never acknowledged: cut it before appending.
    await truncate(path, validBytes).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "ENOENT") throw e;
    });
    const lastRotated = (await rotatedFiles(o.dir)).at(-1);
    const lastSeq =
      records.at(-1)?.seq ??
      (lastRotated
        ? ((await readRecords(join(o.dir, lastRotated.name))).records.at(-1)?.seq ?? 0)
        : 0);
    const file = await open(path, "a");
    return new AuditLog(o, file, {
      nextSeq: lastSeq + 1,
      bytes: validBytes,
      firstSeq: records[0]?.seq ?? lastSeq + 1,
    });
  }

  /** Resolves once the record is on disk; rejects with AuditQueueFullError past `pendingMax`. */
  append(event: AuditEvent): Promise<AuditRecord> {
    if (this.pending >= this.o.pendingMax) {
      return Promise.reject(new AuditQueueFullError(`${this.pending} audit records waiting`));
    }
    this.pending += 1;
    const record: AuditRecord = {
      seq: this.nextSeq++,
      at: new Date(this.o.nowMs()).toISOString(),
      ...event,
    };
    const written = this.tail.then(() => this.write(record));
    this.tail = written.catch(() => undefined);
    return written
      .then(() => record)
      .finally(() => {
        this.pending -= 1;
      });
  }

  /** Records with seq > `afterSeq`, oldest first, at most `limit`; and the cursor after them. */
  async page(
    afterSeq: number,
    limit: number,
  ): Promise<{ records: AuditRecord[]; next: number | null }> {
    await this.tail;
    const files = [
      ...(await rotatedFiles(this.o.dir)),
      { name: current, firstSeq: this.firstSeqOfCurrent },
    ];
    const out: AuditRecord[] = [];
    for (const [i, f] of files.entries()) {
      // A file whose successor starts at or before the cursor holds nothing after it.
      const successor = files[i + 1];
      if (successor !== undefined && successor.firstSeq <= afterSeq + 1) continue;
      for (const r of (await readRecords(join(this.o.dir, f.name))).records) {
        if (r.seq > afterSeq && out.length < limit) out.push(r);
      }
      if (out.length >= limit) break;
    }
    const last = out.at(-1);
    const more = last !== undefined && last.seq < this.nextSeq - 1;
    return { records: out, next: more ? last.seq : null };
  }

  async close(): Promise<void> {
    await this.tail;
    await this.file.close();
  }

  private async write(record: AuditRecord): Promise<void> {
    const line = Buffer.from(`${JSON.stringify(record)}\n`, "utf8");
    if (this.bytes > 0 && this.bytes + line.length > this.o.fileBytesMax)
      await this.rotate(record.seq);
    await this.file.write(line);
    await this.file.datasync();
    this.bytes += line.length;
  }

  /** Closes the current file under its first seq's name; `nextFirstSeq` begins the new one. */
  private async rotate(nextFirstSeq: number): Promise<void> {
    await this.file.close();
    const name = `audit-${String(this.firstSeqOfCurrent).padStart(12, "0")}.jsonl`;
    await rename(join(this.o.dir, current), join(this.o.dir, name));
    const rotated = await rotatedFiles(this.o.dir);
    for (const old of rotated.slice(0, Math.max(0, rotated.length - this.o.filesMax))) {
      await rm(join(this.o.dir, old.name), { force: true });
    }
    this.file = await open(join(this.o.dir, current), "a");
    this.bytes = 0;
    this.firstSeqOfCurrent = nextFirstSeq;
  }
}

async function rotatedFiles(dir: string): Promise<{ name: string; firstSeq: number }[]> {
  const out: { name: string; firstSeq: number }[] = [];
  for (const name of await readdir(dir)) {
    const m = rotatedName.exec(name);
    if (m) out.push({ name, firstSeq: Number(m[1]) });
  }
  return out.sort((a, b) => a.firstSeq - b.firstSeq);
}

/** Every whole record of a file, and the bytes they take; reading stops at a torn line. */
async function readRecords(path: string): Promise<{ records: AuditRecord[]; validBytes: number }> {
  const bytes = await readFile(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return Buffer.alloc(0);
    throw e;
  });
  const records: AuditRecord[] = [];
  let validBytes = 0;
  for (let start = 0; start < bytes.length;) {
    const end = bytes.indexOf(0x0a, start);
    if (end < 0) break;
    try {
      records.push(JSON.parse(bytes.subarray(start, end).toString("utf8")) as AuditRecord);
    } catch {
      break;
    }
    start = end + 1;
    validBytes = start;
  }
  return { records, validBytes };
}
