/**
 * One lease renewal: a LeaseKeepAlive stream opened for this one request (so a late answer can
 * never be taken for a later request's), the request written, the first answer awaited.
 * Resolves with the TTL etcd granted (0 or less: the lease is gone); rejects on a stream error
 * or after `timeoutMs` without an answer (a black-holed member answers nothing).
 */
import type { Etcd3, ILeaseKeepAliveResponse } from "etcd3";
import { EtcdUnavailableError } from "./errors.js";

export async function renewLease(
  client: Etcd3,
  leaseId: string,
  timeoutMs: number,
): Promise<number> {
  const stream = await client.leaseClient.leaseKeepAlive();
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      finish();
      reject(
        new EtcdUnavailableError("lease keepalive", { cause: `no answer in ${timeoutMs} ms` }),
      );
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      stream.cancel();
    };
    stream.on("data", (res: ILeaseKeepAliveResponse) => {
      finish();
      resolve(Number(res.TTL));
    });
    stream.on("error", (err) => {
      finish();
      reject(new EtcdUnavailableError("lease keepalive", { cause: err }));
    });
    stream.write({ ID: leaseId });
  });
}
