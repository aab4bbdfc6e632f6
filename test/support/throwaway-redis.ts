/**
 * A throwaway redis-server on a free loopback port with its own temporary directory, for
 * tests that need unsafe settings or a server that dies: the shared server of deploy/local
 * is never reconfigured or stopped. Safe settings by default; `extraArgs` override them
 * (for a repeated directive the last one wins).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { freePort } from "./free-port.js";

const readyWaitMs = 10_000;
const exitWaitMs = 5_000;

export interface ThrowawayRedis {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** SIGKILL, like a crash: only what the AOF fsynced survives. */
  kill(): Promise<void>;
  /** Starts again on the same port with the same directory (and AOF). */
  restart(): Promise<void>;
  /** Kills the server and removes its directory. */
  dispose(): Promise<void>;
}

export async function startThrowawayRedis(
  extraArgs: readonly string[] = [],
): Promise<ThrowawayRedis> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), "verdict-redis-test-"));
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--daemonize",
    "no",
    "--logfile",
    "",
    "--loglevel",
    "warning",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--maxmemory-policy",
    "noeviction",
    ...extraArgs,
  ];
  let child: ChildProcess | undefined;
  const launch = async () => {
    child = spawn("redis-server", args, { stdio: "ignore" });
    await waitReady(port, child);
  };
  const kill = async () => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGKILL");
    const timeout = new AbortController();
    await Promise.race([
      exited,
      sleep(exitWaitMs, undefined, { signal: timeout.signal }).catch(() => undefined),
    ]);
    timeout.abort(); // a pending timer would keep the test process alive
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    kill,
    restart: launch,
    async dispose() {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Until the server answers PING (AOF loaded); bounded in time. */
async function waitReady(port: number, child: ChildProcess): Promise<void> {
  const until = Date.now() + readyWaitMs;
  for (let attempt = 0; attempt < 200 && Date.now() < until; attempt++) {
    if (child.exitCode !== null)
      throw new Error(`redis-server on port ${port} exited with ${child.exitCode}`);
    const probe = new Redis({
      port,
      host: "127.0.0.1",
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
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
  throw new Error(`redis-server on port ${port} was not ready within ${readyWaitMs} ms`);
}
