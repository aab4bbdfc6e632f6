/**
 * A throwaway redis-server that serves TLS only (`--port 0 --tls-port …`), its certificate
 * signed by a test CA, with the settings a yes vote needs (appendonly, appendfsync always,
 * noeviction) and an ACL: the default user is off, user `verdict` has a password. On a free
 * port with its own temporary directory; the shared Redis of deploy/local is never touched.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { freePort } from "./free-port.js";
import type { TestCa } from "./tls-ca.js";

const readyWaitMs = 10_000;

export interface TlsRedis {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** `rediss://verdict:<password>@127.0.0.1:<port>` */
  readonly url: string;
  /** A direct client over TLS, as `verdict`, to read the truth. */
  direct(): Redis;
  dispose(): Promise<void>;
}

export async function startTlsRedis(ca: TestCa): Promise<TlsRedis> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), "verdict-redis-tls-"));
  const user = "verdict";
  const password = "redis-tls-test-password-4c1e";
  const args = [
    ...["--port", "0", "--tls-port", String(port), "--bind", "127.0.0.1"],
    ...["--tls-cert-file", ca.serverCertFile, "--tls-key-file", ca.serverKeyFile],
    ...["--tls-ca-cert-file", ca.caFile, "--tls-auth-clients", "optional"],
    ...["--dir", dir, "--save", "", "--daemonize", "no", "--logfile", "", "--loglevel", "warning"],
    ...["--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "noeviction"],
    ...["--user", "default", "off", "--user", user, "on", `>${password}`, "~*", "&*", "+@all"],
  ];
  const child: ChildProcess = spawn("redis-server", args, { stdio: "ignore" });
  const direct = () =>
    new Redis(`rediss://${user}:${password}@127.0.0.1:${port}`, {
      tls: { ca: readFileSync(ca.caFile) },
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
  const dispose = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await gone;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitReady(direct, child, port);
  } catch (e) {
    await dispose();
    throw e;
  }
  return {
    port,
    user,
    password,
    url: `rediss://${user}:${password}@127.0.0.1:${port}`,
    direct,
    dispose,
  };
}

/** Until the server answers PING over TLS; bounded in time. */
async function waitReady(direct: () => Redis, child: ChildProcess, port: number): Promise<void> {
  const until = Date.now() + readyWaitMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) {
      throw new Error(`redis-server on port ${port} exited with ${child.exitCode}`);
    }
    const probe = direct();
    probe.on("error", () => undefined);
    try {
      await probe.connect();
      if ((await probe.ping()) === "PONG") return;
    } catch {
      // not up yet
    } finally {
      probe.disconnect();
    }
    await sleep(50);
  }
  throw new Error(`TLS redis-server on port ${port} was not ready within ${readyWaitMs} ms`);
}
