/**
 * The cluster id: generated once when the cluster is created, kept in the node's data
 * directory, and registered in every participant (G6: two clusters never share one).
 */
import { randomUUID } from "node:crypto";
import { open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import type { ClusterId } from "../core/ids.js";

const fileName = "cluster-id";

export async function loadOrCreateClusterId(dataDir: string): Promise<ClusterId> {
  const path = join(dataDir, fileName);
  try {
    const id = (await readFile(path, "utf8")).trim();
    if (!/^[a-z0-9-]{8,64}$/.test(id)) throw new Error(`${path} holds no valid cluster id`);
    return id as ClusterId;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  // Short enough for PostgreSQL's 200-byte gid with room for the xid and branch number.
  const id = randomUUID().replaceAll("-", "").slice(0, 20);
  const tmp = `${path}.tmp`;
  const f = await open(tmp, "w");
  await f.writeFile(`${id}\n`);
  await f.sync();
  await f.close();
  await rename(tmp, path);
  const dir = await open(dataDir, "r");
  await dir.sync();
  await dir.close();
  return id as ClusterId;
}
