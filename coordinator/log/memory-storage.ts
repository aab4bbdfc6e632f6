/**
 * An in-memory disk that forgets what a real one may forget, for tests and the Raft
 * simulator. A `MemoryDisk` holds the files; `disk.storage()` mounts a `Storage` on it.
 * `crash()` keeps only what was made durable:
 * - a file's bytes up to its last `datasync` (optionally plus a prefix of the unsynced
 *   tail of the file written last: a torn write, cut by the injected seeded random);
 * - directory entries (create, rename, unlink) as of the last `syncDir` of their
 *   directory; a file whose entry was never made durable is gone.
 * Every mount made before a crash is dead afterwards: its calls reject, so a process
 * that "died" cannot touch the disk of its successor. Directories themselves are
 * durable at once (a simplification: the WAL creates its directory once).
 * Each call yields to the event loop first, so concurrent callers interleave; with a
 * seeded random and no timers, a run replays exactly.
 */
import { dirOf } from "./storage.js";
import type { Storage, StorageFile } from "./storage.js";

export type StorageOpName =
  | "mkdirp"
  | "list"
  | "open"
  | "readFile"
  | "rename"
  | "unlink"
  | "syncDir"
  | "append"
  | "truncate"
  | "datasync"
  | "close";

export interface StorageOp {
  readonly name: StorageOpName;
  readonly path: string;
}

/**
 * What a fault hook decides for an operation: crash the disk before it (optionally
 * tearing the last unsynced write), fail it with EIO, or let it run.
 */
export type FaultAction = "crash" | "crash-torn" | "fail" | undefined;

export interface MemoryDiskStats {
  fileSyncs: number;
  dirSyncs: number;
  writes: number;
  bytesWritten: number;
  crashes: number;
}

/** A file's content: `bytes[0, length)` as the process sees it; `synced` is what survives a crash. */
class Inode {
  bytes = new Uint8Array(256);
  length = 0;
  synced = new Uint8Array(0);
  /** Lowest offset changed since the last datasync (Infinity when clean). */
  dirtyFrom = Infinity;

  view(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  append(data: Uint8Array): void {
    if (this.length + data.byteLength > this.bytes.byteLength) {
      const grown = new Uint8Array(
        Math.max(this.bytes.byteLength * 2, this.length + data.byteLength),
      );
      grown.set(this.view());
      this.bytes = grown;
    }
    this.bytes.set(data, this.length);
    this.dirtyFrom = Math.min(this.dirtyFrom, this.length);
    this.length += data.byteLength;
  }

  truncate(sizeBytes: number): void {
    if (sizeBytes > this.length) this.append(new Uint8Array(sizeBytes - this.length));
    this.length = sizeBytes;
    this.dirtyFrom = Math.min(this.dirtyFrom, sizeBytes);
  }

  datasync(): void {
    this.synced = this.view().slice();
    this.dirtyFrom = Infinity;
  }

  /** Back to the synced content, plus `keepUnsyncedBytes` of an appended-only unsynced tail. */
  restore(keepUnsyncedBytes: number): void {
    const tail =
      this.dirtyFrom >= this.synced.byteLength
        ? this.bytes.slice(this.synced.byteLength, this.synced.byteLength + keepUnsyncedBytes)
        : new Uint8Array(0);
    this.bytes = new Uint8Array(Math.max(256, this.synced.byteLength + tail.byteLength));
    this.length = 0;
    this.append(this.synced);
    this.append(tail);
    this.datasync();
  }
}

/** Everything a disk holds; shared by the MemoryDisk and the storages mounted on it. */
class DiskState {
  readonly stats: MemoryDiskStats = {
    fileSyncs: 0,
    dirSyncs: 0,
    writes: 0,
    bytesWritten: 0,
    crashes: 0,
  };
  readonly live = new Map<string, Inode>();
  readonly durable = new Map<string, Inode>();
  readonly dirs = new Set<string>(["/", "."]);
  epoch = 0;
  lastWritten: Inode | undefined;
  fault: ((op: StorageOp) => FaultAction) | undefined;

  constructor(private readonly random: (() => number) | undefined) {}

  crash(tearLastWrite: boolean): void {
    this.stats.crashes += 1;
    this.epoch += 1;
    this.live.clear();
    for (const [path, inode] of this.durable) this.live.set(path, inode);
    const torn = tearLastWrite ? this.lastWritten : undefined;
    for (const inode of new Set(this.live.values())) {
      let keep = 0;
      if (inode === torn) {
        if (this.random === undefined) throw new Error("MemoryDisk: tearing needs a seeded random");
        const unsynced = Math.max(0, inode.length - inode.synced.byteLength);
        keep = Math.floor(this.random() * (unsynced + 1));
      }
      inode.restore(keep);
    }
    this.lastWritten = undefined;
  }

  /** Entered by every storage call: yields, then checks the mount is alive and consults the fault hook. */
  async enter(epoch: number, op: StorageOp): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (epoch !== this.epoch) throw fsError("ESHUTDOWN", op, "the disk crashed since mount");
    const action = this.fault?.(op);
    if (action === "crash" || action === "crash-torn") {
      this.crash(action === "crash-torn");
      throw fsError("ESHUTDOWN", op, "crashed by fault hook");
    }
    if (action === "fail") throw fsError("EIO", op, "injected I/O error");
  }

  noteWrite(inode: Inode, bytes: number): void {
    this.stats.writes += 1;
    this.stats.bytesWritten += bytes;
    this.lastWritten = inode;
  }
}

export class MemoryDisk {
  private readonly state: DiskState;

  /** `random` returns a float in [0, 1); it is needed only to tear writes. */
  constructor(random?: () => number) {
    this.state = new DiskState(random);
  }

  /** Counters since the disk was made (fsyncs of files and directories, writes, crashes). */
  get stats(): Readonly<MemoryDiskStats> {
    return { ...this.state.stats };
  }

  /** Mounts a Storage on this disk; it dies at the next crash. */
  storage(): Storage {
    return new MemoryStorage(this.state, this.state.epoch);
  }

  /** Consulted before every operation (after the yield): crash the disk, fail the call, or run it. */
  setFault(hook: ((op: StorageOp) => FaultAction) | undefined): void {
    this.state.fault = hook;
  }

  /** Power loss: drops every unsynced byte and every non-durable directory change. */
  crash(options: { tearLastWrite?: boolean } = {}): void {
    this.state.crash(options.tearLastWrite === true);
  }

  /** Flips bits of one byte, durably (media corruption). */
  corruptByte(path: string, offsetBytes: number, xorMask = 0xff): void {
    const inode = this.state.live.get(path);
    if (inode === undefined || offsetBytes >= inode.length) {
      throw new Error(`MemoryDisk: no byte ${offsetBytes} in ${path}`);
    }
    inode.bytes[offsetBytes] = (inode.bytes[offsetBytes] ?? 0) ^ xorMask;
    if (offsetBytes < inode.synced.byteLength) {
      inode.synced[offsetBytes] = (inode.synced[offsetBytes] ?? 0) ^ xorMask;
    }
  }

  /** The file's content as the process sees it now, or undefined when absent. */
  fileBytes(path: string): Uint8Array | undefined {
    return this.state.live.get(path)?.view().slice();
  }
}

class MemoryStorage implements Storage {
  constructor(
    private readonly state: DiskState,
    private readonly epoch: number,
  ) {}

  async mkdirp(dir: string): Promise<void> {
    await this.state.enter(this.epoch, { name: "mkdirp", path: dir });
    for (let d = dir; !this.state.dirs.has(d); d = dirOf(d)) this.state.dirs.add(d);
  }

  async list(dir: string): Promise<string[]> {
    await this.state.enter(this.epoch, { name: "list", path: dir });
    const names: string[] = [];
    for (const path of [...this.state.live.keys(), ...this.state.dirs]) {
      if (path !== dir && dirOf(path) === dir) names.push(path.slice(path.lastIndexOf("/") + 1));
    }
    return names;
  }

  async open(path: string, options?: { truncate?: boolean }): Promise<StorageFile> {
    const op: StorageOp = { name: "open", path };
    await this.state.enter(this.epoch, op);
    if (!this.state.dirs.has(dirOf(path))) throw fsError("ENOENT", op, "no such directory");
    let inode = this.state.live.get(path);
    if (inode === undefined) {
      inode = new Inode();
      this.state.live.set(path, inode);
    }
    if (options?.truncate === true) inode.truncate(0);
    return new MemoryFile(this.state, this.epoch, path, inode);
  }

  async readFile(path: string): Promise<Uint8Array> {
    const op: StorageOp = { name: "readFile", path };
    await this.state.enter(this.epoch, op);
    const inode = this.state.live.get(path);
    if (inode === undefined) throw fsError("ENOENT", op, "no such file");
    return inode.view().slice();
  }

  async rename(from: string, to: string): Promise<void> {
    const op: StorageOp = { name: "rename", path: from };
    await this.state.enter(this.epoch, op);
    const inode = this.state.live.get(from);
    if (inode === undefined) throw fsError("ENOENT", op, "no such file");
    this.state.live.delete(from);
    this.state.live.set(to, inode);
  }

  async unlink(path: string): Promise<void> {
    const op: StorageOp = { name: "unlink", path };
    await this.state.enter(this.epoch, op);
    if (!this.state.live.delete(path)) throw fsError("ENOENT", op, "no such file");
  }

  async syncDir(dir: string): Promise<void> {
    await this.state.enter(this.epoch, { name: "syncDir", path: dir });
    this.state.stats.dirSyncs += 1;
    const { live, durable } = this.state;
    for (const path of [...durable.keys()]) {
      if (dirOf(path) === dir && !live.has(path)) durable.delete(path);
    }
    for (const [path, inode] of live) if (dirOf(path) === dir) durable.set(path, inode);
  }
}

class MemoryFile implements StorageFile {
  private closed = false;

  constructor(
    private readonly state: DiskState,
    private readonly epoch: number,
    readonly path: string,
    private readonly inode: Inode,
  ) {}

  private async enter(name: StorageOpName): Promise<void> {
    const op: StorageOp = { name, path: this.path };
    await this.state.enter(this.epoch, op);
    if (this.closed) throw fsError("EBADF", op, "file is closed");
  }

  async append(data: Uint8Array): Promise<void> {
    await this.enter("append");
    this.inode.append(data);
    this.state.noteWrite(this.inode, data.byteLength);
  }

  async truncate(sizeBytes: number): Promise<void> {
    await this.enter("truncate");
    this.inode.truncate(sizeBytes);
  }

  async datasync(): Promise<void> {
    await this.enter("datasync");
    this.state.stats.fileSyncs += 1;
    this.inode.datasync();
  }

  async close(): Promise<void> {
    await this.enter("close");
    this.closed = true;
  }
}

function fsError(code: string, op: StorageOp, message: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: ${op.name} ${op.path}: ${message}`);
  error.code = code;
  return error;
}
