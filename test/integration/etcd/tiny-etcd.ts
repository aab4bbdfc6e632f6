/**
 * A throwaway one-member etcd with a tiny backend quota, for the NOSPACE tests: junk keys
 * (outside Verdict's prefix) fill it until etcd raises its NOSPACE alarm, and the runbook of
 * docs/etcd.md ("NOSPACE") — run with etcdctl, as an operator would — frees it again.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import type { Etcd3 } from "etcd3";
import { isNoSpace } from "../../../coordinator/log/etcd/client.js";
import { freePort } from "../../support/free-port.js";
import { connect, etcdBinary, ensureEtcd } from "./helpers.js";

const run = promisify(execFile);
export const tinyQuotaBytes = 4 * 1024 * 1024;
const junkValueBytes = 200_000;
/** 4 MiB of quota takes about 20 junk values; far more means the alarm never came. */
const junkKeysMax = 200;

export interface TinyEtcd {
  readonly endpoint: string;
  /** etcdctl with this member's endpoint; resolves with its stdout. */
  etcdctl(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startTinyEtcd(): Promise<TinyEtcd> {
  await ensureEtcd(); // builds the binaries if this machine has none yet
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "verdict-etcd-nospace-"));
  const endpoint = `127.0.0.1:${clientPort}`;
  const etcd: ChildProcess = spawn(
    etcdBinary(),
    [
      `--data-dir=${dataDir}`,
      `--listen-client-urls=http://${endpoint}`,
      `--advertise-client-urls=http://${endpoint}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
      `--quota-backend-bytes=${tinyQuotaBytes}`,
      "--log-level=error",
    ],
    { stdio: "ignore" },
  );
  // Should this process end without `stop`, the throwaway etcd goes with it.
  process.once("exit", () => etcd.kill("SIGKILL"));
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => process.exit(1));
  const probe = connect([endpoint]);
  try {
    for (let i = 0; ; i++) {
      try {
        await probe.maintenance.status();
        break;
      } catch (err) {
        if (i >= 100) throw err;
        await sleep(100);
      }
    }
  } finally {
    probe.close();
  }
  const etcdctl = path.join(path.dirname(etcdBinary()), "etcdctl");
  return {
    endpoint,
    etcdctl: async (...args) =>
      (await run(etcdctl, [`--endpoints=${endpoint}`, ...args], { timeout: 30_000 })).stdout,
    async stop() {
      etcd.kill("SIGKILL");
      await sleep(200);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Puts junk values under `prefix` until etcd refuses one with NOSPACE; returns how many landed. */
export async function fillUntilNoSpace(client: Etcd3, prefix: string): Promise<number> {
  const junk = Buffer.alloc(junkValueBytes, "j");
  for (let i = 0; i < junkKeysMax; i++) {
    try {
      await client.put(`${prefix}${i}`).value(junk);
    } catch (err) {
      if (isNoSpace(err)) return i;
      throw err;
    }
  }
  throw new Error(`no NOSPACE alarm after ${junkKeysMax} junk values`);
}

/**
 * docs/etcd.md's NOSPACE runbook on this one member: see the alarm, delete what filled the
 * quota (here the junk), compact to the current revision, defragment, disarm, check.
 */
export async function runNoSpaceRunbook(etcd: TinyEtcd, junkPrefix: string): Promise<void> {
  const alarms = await etcd.etcdctl("alarm", "list");
  if (!alarms.includes("NOSPACE")) throw new Error(`no NOSPACE alarm listed: ${alarms}`);
  await etcd.etcdctl("del", "--prefix", junkPrefix);
  const status = await etcd.etcdctl("endpoint", "status", "-w", "json");
  const revision = /"revision":(\d+)/.exec(status)?.[1];
  if (revision === undefined) throw new Error(`no revision in ${status}`);
  await etcd.etcdctl("compact", revision);
  await etcd.etcdctl("defrag");
  await etcd.etcdctl("alarm", "disarm");
  const left = await etcd.etcdctl("alarm", "list");
  if (left.trim() !== "") throw new Error(`alarms left after disarm: ${left}`);
}
