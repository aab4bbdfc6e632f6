/**
 * Re-sends one etcd request after a transient error (timeout, connection lost, etcd leader
 * change) with a capped backoff, until it is answered or the caller stops it. Every request
 * sent this way is idempotent by construction (the same entry at the same index, guarded by
 * compares), so a duplicate delivery is harmless. Bounded by `stopped`: the log stops once
 * leadership is lost, which the lease clock guarantees within the lease TTL.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { LogError, assertLog } from "../errors.js";
import { isNoSpace, isRequestRefused } from "./client.js";
import { EtcdNoSpaceError } from "./errors.js";

const BACKOFF_FIRST_MS = 20;
const BACKOFF_MAX_MS = 250;

/** `final`: an error re-sending cannot cure, thrown at once (the caller changes the request). */
export async function resendUntilAnswered<T>(
  send: () => Promise<T>,
  stopped: () => LogError | undefined,
  final: (err: unknown) => boolean = () => false,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const stop = stopped();
    if (stop !== undefined) throw stop;
    try {
      return await send();
    } catch (err) {
      if (err instanceof LogError || final(err)) throw err;
      if (isNoSpace(err)) throw new EtcdNoSpaceError({ cause: err });
      assertLog(!isRequestRefused(err), `etcd refused a request as malformed: ${String(err)}`);
      await sleep(Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.min(attempt, 8)));
    }
  }
}
