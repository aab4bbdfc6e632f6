/**
 * Exactly the file operations the WAL needs, so that a fault-injecting twin
 * (memory-storage.ts) can stand in for the disk in tests and the Raft simulator.
 *
 * Durability contract (POSIX, as the WAL relies on it):
 * - bytes written to a file survive a crash only after `datasync()` on that file;
 * - creating, renaming or unlinking a directory entry survives a crash only after
 *   `syncDir()` on the directory that holds it.
 * Paths are plain strings joined with "/"; names returned by `list` have no directory.
 */
export interface Storage {
  /** Creates the directory and its parents if missing. */
  mkdirp(dir: string): Promise<void>;
  /** Names of the entries in `dir` (no order promised); [] when it does not exist. */
  list(dir: string): Promise<string[]>;
  /** Opens `path` for appending, creating it if missing; `truncate` empties it first. */
  open(path: string, options?: { truncate?: boolean }): Promise<StorageFile>;
  /** The whole content of `path`. */
  readFile(path: string): Promise<Uint8Array>;
  /** Atomically replaces `to` with `from` (same directory). */
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** fsync of a directory: makes its entry changes (create, rename, unlink) durable. */
  syncDir(dir: string): Promise<void>;
}

export interface StorageFile {
  readonly path: string;
  /** Appends all of `data` at the end of the file. */
  append(data: Uint8Array): Promise<void>;
  /** Cuts the file to `sizeBytes`. */
  truncate(sizeBytes: number): Promise<void>;
  /** fdatasync: makes the file's data (and its size) durable. */
  datasync(): Promise<void>;
  close(): Promise<void>;
}

/** Joins a directory and a name the way every Storage expects. */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? `${dir}${name}` : `${dir}/${name}`;
}

/** The directory part of a path joined by `joinPath`. */
export function dirOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? (slash === 0 ? "/" : ".") : path.slice(0, slash);
}
