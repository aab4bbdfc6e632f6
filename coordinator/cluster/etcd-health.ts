/**
 * Each etcd member's own answer for the operator's view: whether it answers, and which member
 * it believes leads etcd's Raft group. One short-lived connection per member (an admin read is
 * rare; the log's connection balances over members and cannot address one).
 */
import { connectEtcd, type EtcdSecurity } from "../log/etcd/client.js";

export interface EtcdEndpointHealth {
  endpoint: string;
  healthy: boolean;
  leader: boolean;
  dbSizeBytes?: number;
  error?: string;
}

/** A status answer is small. */
const STATUS_REPLY_BYTES_MAX = 64 * 1024;

export async function etcdHealth(
  endpoints: readonly string[],
  requestTimeoutMs: number,
  security: EtcdSecurity = {},
): Promise<{ endpoints: EtcdEndpointHealth[]; leaderEndpoint: string | null }> {
  const answers = await Promise.all(
    endpoints.map((e) => memberStatus(e, requestTimeoutMs, security)),
  );
  const leaderEndpoint = answers.find((a) => a.leader)?.endpoint ?? null;
  return { endpoints: answers, leaderEndpoint };
}

async function memberStatus(
  endpoint: string,
  requestTimeoutMs: number,
  security: EtcdSecurity,
): Promise<EtcdEndpointHealth> {
  const client = connectEtcd({
    endpoints: [endpoint],
    requestTimeoutMs,
    replyBytesMax: STATUS_REPLY_BYTES_MAX,
    security,
  });
  try {
    const status = await client.maintenance.status();
    const leader = status.leader !== "0" && status.leader === status.header.member_id;
    return {
      endpoint,
      healthy: status.leader !== "0",
      leader,
      dbSizeBytes: Number(status.dbSize),
    };
  } catch (e) {
    return {
      endpoint,
      healthy: false,
      leader: false,
      error: (e instanceof Error ? e.message : String(e)).slice(0, 4000),
    };
  } finally {
    client.close();
  }
}
