/**
 * The one transfer runner of the crash tests, for every workload: begin a transaction,
 * enlist the branches the workload built, commit, and record what the client was told. The
 * workloads (bank.ts, mixed-bank.ts) only say which branches a transfer has.
 */
import { TransactionAbortedError, VerdictClient, type EnlistRequest } from "../../client/index.js";

/** What the client was told: `not-sent` means commit was never called. */
export type Told = "committed" | "committing" | "aborted" | "unknown" | "not-sent";

/** One transfer of a workload whose specs are `S`, and what its client was told. */
export interface TransferOutcome<S extends { readonly id: string }> {
  readonly spec: S;
  readonly xid: string | undefined;
  readonly told: Told;
  readonly reasonCode?: string;
  readonly reasonMessage?: string;
  readonly error?: string;
}

export function clientFor(url: string, token: string): VerdictClient {
  // Few, quick retries: a dead node should make calls fail fast, not hang the test.
  return new VerdictClient({
    baseUrl: url,
    token,
    timeoutMs: 15_000,
    retry: { attemptsMax: 2, backoffMsInitial: 20, backoffMsMax: 100 },
    outcomeChecksMax: 3,
  });
}

/** Begins a transfer and enlists `branches`; commit is never called (`not-sent`). */
export async function beginTransfer<S extends { readonly id: string }>(
  client: VerdictClient,
  spec: S,
  branches: readonly EnlistRequest[],
  timeoutMs: number,
): Promise<TransferOutcome<S> & { told: "not-sent" }> {
  let xid: string | undefined;
  try {
    xid = (await client.begin({ timeoutMs, labels: { transfer: spec.id } })).xid;
    for (const b of branches) await client.enlist(xid, b);
    return { spec, xid, told: "not-sent" };
  } catch (err) {
    return { spec, xid, told: "not-sent", error: errorText(err) };
  }
}

/** Runs one transfer with `branches` through the SDK and records what its client was told. */
export async function runTransfer<S extends { readonly id: string }>(
  client: VerdictClient,
  spec: S,
  branches: readonly EnlistRequest[],
  timeoutMs: number,
): Promise<TransferOutcome<S>> {
  const begun = await beginTransfer(client, spec, branches, timeoutMs);
  const xid = begun.xid;
  if (begun.error !== undefined || xid === undefined) return begun;
  try {
    const view = await client.commit(xid);
    return { spec, xid, told: view.state === "committed" ? "committed" : "committing" };
  } catch (err) {
    if (err instanceof TransactionAbortedError) {
      return {
        spec,
        xid,
        told: "aborted",
        ...(err.reason ? { reasonCode: err.reason.code, reasonMessage: err.reason.message } : {}),
      };
    }
    return { spec, xid, told: "unknown", error: errorText(err) };
  }
}

/** How many outcomes were told each answer (every key present, zeros included). */
export function countTold(outcomes: readonly { readonly told: Told }[]): Record<Told, number> {
  const told: Record<Told, number> = {
    committed: 0,
    committing: 0,
    aborted: 0,
    unknown: 0,
    "not-sent": 0,
  };
  for (const o of outcomes) told[o.told] += 1;
  return told;
}

function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
