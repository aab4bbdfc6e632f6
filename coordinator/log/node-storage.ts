/**
 * The real Storage on node:fs/promises. `datasync` is fdatasync(2) on the open handle;
 * a directory is fsynced by opening it read-only and calling fsync(2) on it (Linux
 * allows this and needs it for create/rename/unlink to be durable).
 */
import { open, mkdir, readdir, readFile, rename, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import type { Storage, StorageFile } from "./storage.js";

export class NodeStorage implements Storage {
  async mkdirp(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
  }

  async list(dir: string): Promise<string[]> {
    try {
      return await readdir(dir);
    } catch (error) {
      if (isCode(error, "ENOENT")) return [];
      throw error;
    }
  }

  async open(path: string, options?: { truncate?: boolean }): Promise<StorageFile> {
    // "a+": create if missing, every write lands at the end (O_APPEND), reads allowed.
    const handle = await open(path, "a+");
    try {
      if (options?.truncate === true) await handle.truncate(0);
    } catch (error) {
      await handle.close();
      throw error;
    }
    return new NodeFile(path, handle);
  }

  async readFile(path: string): Promise<Uint8Array> {
    return await readFile(path);
  }

  async rename(from: string, to: string): Promise<void> {
    await rename(from, to);
  }

  async unlink(path: string): Promise<void> {
    await unlink(path);
  }

  async syncDir(dir: string): Promise<void> {
    const handle = await open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

class NodeFile implements StorageFile {
  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  async append(data: Uint8Array): Promise<void> {
    // A regular-file write may in principle be short; loop until every byte is out.
    let done = 0;
    while (done < data.byteLength) {
      const { bytesWritten } = await this.handle.write(data, done, data.byteLength - done);
      if (bytesWritten <= 0) throw new Error(`write to ${this.path} made no progress`);
      done += bytesWritten;
    }
  }

  async truncate(sizeBytes: number): Promise<void> {
    await this.handle.truncate(sizeBytes);
  }

  async datasync(): Promise<void> {
    await this.handle.datasync();
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

export function isCode(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
