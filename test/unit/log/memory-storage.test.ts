/**
 * Proves the fault-injecting MemoryDisk forgets what a real disk may forget: unsynced
 * bytes, directory entries not made durable by a directory fsync, a torn (prefix-kept)
 * last write; that a crashed mount can no longer touch the disk; and that it counts fsyncs.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryDisk } from "../../../coordinator/log/memory-storage.js";

const bytes = (...values: number[]) => new Uint8Array(values);

describe("MemoryDisk", () => {
  test("a crash keeps synced bytes and durable entries only", async () => {
    const disk = new MemoryDisk();
    const storage = disk.storage();
    await storage.mkdirp("/d");
    const synced = await storage.open("/d/a");
    await synced.append(bytes(1, 2));
    await synced.datasync();
    await synced.append(bytes(3));
    await storage.syncDir("/d");
    const unsyncedEntry = await storage.open("/d/b");
    await unsyncedEntry.append(bytes(9));
    await unsyncedEntry.datasync();
    assert.deepEqual(disk.stats.fileSyncs, 2);
    assert.deepEqual(disk.stats.dirSyncs, 1);

    disk.crash();
    const after = disk.storage();
    assert.deepEqual(await after.list("/d"), ["a"]);
    assert.deepEqual(await after.readFile("/d/a"), bytes(1, 2));
    await assert.rejects(synced.append(bytes(4)), /ESHUTDOWN/);
    await assert.rejects(storage.list("/d"), /ESHUTDOWN/);
  });

  test("rename and unlink are undone by a crash until the directory is fsynced", async () => {
    const disk = new MemoryDisk();
    const storage = disk.storage();
    await storage.mkdirp("/d");
    const file = await storage.open("/d/tmp");
    await file.append(bytes(5));
    await file.datasync();
    await storage.syncDir("/d");
    await storage.rename("/d/tmp", "/d/final");
    disk.crash();
    assert.deepEqual(await disk.storage().list("/d"), ["tmp"]);
    const again = disk.storage();
    await again.rename("/d/tmp", "/d/final");
    await again.syncDir("/d");
    await again.unlink("/d/final");
    disk.crash();
    assert.deepEqual(await disk.storage().readFile("/d/final"), bytes(5));
  });

  test("a torn crash keeps a random prefix of the last unsynced write", async () => {
    const disk = new MemoryDisk(() => 0.5);
    const storage = disk.storage();
    await storage.mkdirp("/d");
    await storage.syncDir("/d");
    const file = await storage.open("/d/a");
    await storage.syncDir("/d");
    await file.append(bytes(1));
    await file.datasync();
    await file.append(bytes(2, 3, 4, 5));
    disk.crash({ tearLastWrite: true });
    assert.deepEqual(await disk.storage().readFile("/d/a"), bytes(1, 2, 3)); // floor(0.5 * 5) of 4 unsynced
  });

  test("the fault hook can fail one call with EIO", async () => {
    const disk = new MemoryDisk();
    disk.setFault((op) => (op.name === "datasync" ? "fail" : undefined));
    const storage = disk.storage();
    await storage.mkdirp("/d");
    const file = await storage.open("/d/a");
    await assert.rejects(file.datasync(), /EIO/);
    assert.equal(disk.stats.fileSyncs, 0);
  });
});
