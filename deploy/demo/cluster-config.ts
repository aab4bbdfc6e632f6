/**
 * Writes the configurations of the live demo's nodes from the single demo node's
 * (deploy/demo/make-config.sh writes OUT_DIR/verdict.yaml; this reads it): the same tokens and
 * participants, with bookkeeping of their own (`demoNamespaces`), and per node its own id, port, data directory and advertised URL. With 3 nodes (the default) the
 * decision log is in the local etcd cluster (VERDICT_ETCD_ENDPOINTS, written by deploy/local
 * into .local/services.env) under the cluster id `verdict-demo`; with `--nodes 1` it is the
 * node's local WAL. docs/quickstart.md runs it; deploy/demo/live/ uses it.
 *
 *   npx tsx deploy/demo/cluster-config.ts OUT_DIR [--nodes 1|3]  → OUT_DIR/cluster/node-N.yaml
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parse, stringify } from "yaml";

/** Node n listens on clusterPortBase + n (7401, 7402, 7403); the single demo keeps 7400. */
const clusterPortBase = Number(process.env.VERDICT_DEMO_CLUSTER_PORT_BASE ?? 7400);
export const clusterId = "verdict-demo";
const defaultEtcdEndpoints = "127.0.0.1:52379,127.0.0.1:52389,127.0.0.1:52399";
const leaseTtlMs = 5000;

/**
 * Where the demo cluster keeps its bookkeeping, apart from the single demo node's (each
 * participant belongs to one Verdict cluster): the PostgreSQL marker schema, the Redis
 * namespace and the Kafka marker topic, one set for 3 nodes on etcd, another for 1 on a WAL.
 */
export function demoNamespaces(count: number) {
  const mode = count > 1 ? "cluster" : "single";
  return {
    pgSchema: `verdict_demo_${mode}`,
    redisNamespace: `verdict-demo-${mode}`,
    markerTopic: `verdict-demo-${mode}-markers`,
  };
}

export interface ClusterNode {
  id: string;
  url: string;
  configPath: string;
}

function ownNamespace(
  participant: Record<string, unknown>,
  names: ReturnType<typeof demoNamespaces>,
): Record<string, unknown> {
  if (participant.kind === "postgres") return { ...participant, schema: names.pgSchema };
  if (participant.kind === "redis") return { ...participant, namespace: names.redisNamespace };
  if (participant.kind === "kafka") return { ...participant, markerTopic: names.markerTopic };
  return participant;
}

export async function writeClusterConfigs(outDir: string, count = 3): Promise<ClusterNode[]> {
  const base = parse(await readFile(join(outDir, "verdict.yaml"), "utf8")) as Record<
    string,
    unknown
  >;
  const endpoints = (process.env.VERDICT_ETCD_ENDPOINTS ?? defaultEtcdEndpoints).split(",");
  const log = count > 1 ? { kind: "etcd", endpoints, clusterId, leaseTtlMs } : undefined;
  const dir = join(outDir, "cluster");
  await mkdir(dir, { recursive: true });
  const nodes: ClusterNode[] = [];
  for (let n = 1; n <= count; n++) {
    const id = `demo-${n}`;
    const port = clusterPortBase + n;
    const url = `http://127.0.0.1:${port}`;
    const node = { id, dataDir: join(dir, `node-${n}`), host: "127.0.0.1", port };
    const config = {
      ...base,
      // With the log in etcd a transaction's record must fit one etcd request (checked at load).
      ...(log === undefined
        ? {}
        : { limits: { ...(base.limits as object), payloadBytesPerTransactionMax: 458752 } }),
      participants: (base.participants as Record<string, unknown>[]).map((p) =>
        ownNamespace(p, demoNamespaces(count)),
      ),
      node: log === undefined ? node : { ...node, advertiseUrl: url },
      ...(log === undefined ? {} : { log }),
    };
    const configPath = join(dir, `node-${n}.yaml`);
    // Renamed into place: an interrupted run never leaves half a config.
    const header = `# Demo cluster node ${n} of ${count} (deploy/demo/cluster-config.ts)\n`;
    await writeFile(`${configPath}.tmp`, header + stringify(config));
    await rename(`${configPath}.tmp`, configPath);
    nodes.push({ id, url, configPath });
  }
  return nodes;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [outDir, flag, value] = process.argv.slice(2);
  const count = flag === "--nodes" ? Number(value) : 3;
  if (outDir === undefined || ![1, 3].includes(count)) {
    console.error("usage: cluster-config.ts OUT_DIR [--nodes 1|3]");
    process.exit(2);
  }
  for (const node of await writeClusterConfigs(outDir, count)) {
    console.log(`${node.id} ${node.url} ${node.configPath}`);
  }
}
