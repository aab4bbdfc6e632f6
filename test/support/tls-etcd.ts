/**
 * A private one-member etcd that serves clients over TLS only and (by default) requires a
 * client certificate signed by the test CA (`--client-cert-auth`); optionally with etcd's
 * user/password authentication enabled for user `root`. On a free port with a temporary
 * data directory: the binary deploy/local built (~/.cache/verdict/etcd-v3.6.16). The shared
 * etcd cluster of deploy/local is never touched.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connectEtcd, connectionDefaults } from "../../coordinator/log/etcd/client.js";
import { readTlsFiles } from "../../shared/tls.js";
import { etcdBinary } from "../integration/etcd/helpers.js";
import { freePort } from "./free-port.js";
import type { TestCa } from "./tls-ca.js";

const readyTimeoutMs = 20_000;

export interface TlsEtcd {
  /** `127.0.0.1:<port>` (clients must speak TLS). */
  readonly endpoint: string;
  readonly dir: string;
  dispose(): Promise<void>;
}

export interface TlsEtcdOptions {
  /** `--client-cert-auth` (default true). */
  readonly clientCertAuth?: boolean;
  /** Enables etcd's authentication with user `root` holding this password. */
  readonly rootPassword?: string;
}

export async function startTlsEtcd(ca: TestCa, opts: TlsEtcdOptions = {}): Promise<TlsEtcd> {
  const dir = await mkdtemp(join(tmpdir(), "verdict-etcd-tls-"));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const client = `https://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    ["--name", "tls1"],
    ["--data-dir", join(dir, "data")],
    ["--listen-client-urls", client],
    ["--advertise-client-urls", client],
    ["--listen-peer-urls", peer],
    ["--initial-advertise-peer-urls", peer],
    ["--initial-cluster", `tls1=${peer}`],
    ["--initial-cluster-state", "new"],
    ["--cert-file", ca.serverCertFile],
    ["--key-file", ca.serverKeyFile],
    // etcd asks every client for a certificate once it has a CA to check them against.
    opts.clientCertAuth === false ? [] : ["--trusted-ca-file", ca.caFile, "--client-cert-auth"],
    ["--heartbeat-interval", "100"],
    ["--election-timeout", "1000"],
    ["--log-level", "warn"],
  ].flat();
  const log = createWriteStream(join(dir, "etcd.log"), { flags: "a" });
  const child: ChildProcess = spawn(etcdBinary(), args, { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const endpoint = `127.0.0.1:${clientPort}`;
  const dispose = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once("close", resolve));
      child.kill("SIGKILL");
      await gone;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await awaitReady(endpoint, ca, child, dir);
    if (opts.rootPassword !== undefined) await enableAuth(endpoint, ca, opts.rootPassword);
  } catch (e) {
    await dispose();
    throw e;
  }
  return { endpoint, dir, dispose };
}

/** The test CA's client certificate (CN=client): accepted whether or not it is required. */
const clientTls = (ca: TestCa) =>
  readTlsFiles(
    { caFile: ca.caFile, certFile: ca.clientCertFile, keyFile: ca.clientKeyFile },
    "test etcd",
  );

async function enableAuth(endpoint: string, ca: TestCa, password: string): Promise<void> {
  const etcd = connectEtcd({
    endpoints: [endpoint],
    ...connectionDefaults,
    security: { tls: clientTls(ca) },
  });
  try {
    await etcd.user("root").create(password);
    await etcd.user("root").addRole("root");
    await etcd.auth.authEnable();
  } finally {
    etcd.close();
  }
}

async function awaitReady(endpoint: string, ca: TestCa, child: ChildProcess, dir: string) {
  const tls = clientTls(ca);
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    const etcd = connectEtcd({ endpoints: [endpoint], ...connectionDefaults, security: { tls } });
    const status = await etcd.maintenance.status().catch(() => undefined);
    etcd.close();
    if (status !== undefined && status.leader !== "0") return;
    if (child.exitCode !== null) throw new Error(`TLS etcd exited; log in ${dir}`);
    if (Date.now() > deadline) throw new Error(`TLS etcd not ready; log in ${dir}`);
    await sleep(200);
  }
}
