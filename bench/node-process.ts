/**
 * A Verdict node in a child process (`verdict start --config FILE`), so the bench's clients
 * do not share an event loop with the coordinator. Runs the build in `dist/` (built first
 * if missing) or, with `from: "src"`, the sources through tsx.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import { repoRoot } from "../test/support/repo-root.js";
import { services } from "../test/support/services.js";

export interface NodeProcessOptions {
  readonly from: "dist" | "src";
  readonly participants: readonly {
    readonly name: string;
    readonly connectionString: string;
    readonly lockTimeoutMs?: number;
  }[];
  /** PostgreSQL schema of Verdict's tables (a cluster is registered per schema). */
  readonly schema: string;
  readonly poolSize: number;
  readonly inFlightTransactionsMax: number;
  /** More fields of the config's `limits` section. */
  readonly limits?: Readonly<Record<string, number>>;
  /** Redis and Kafka participants, passed to the config as they are. */
  readonly otherParticipants?: readonly Record<string, unknown>[];
  /** Fields of the config's `protocol` section. */
  readonly protocol?: Readonly<Record<string, number | boolean | string>>;
  /** `VERDICT_FAILPOINTS` of the process (none if absent). */
  readonly failpoints?: string;
  /**
   * A directory to run in (config and data): the same directory again restarts the same node.
   * The caller owns it (`stop` leaves it); a fresh one, removed by `stop`, otherwise.
   */
  readonly dir?: string;
  /** Where the node's own output goes once it listens. */
  readonly log: (line: string) => void;
  /** Extra flags for the node's `node` (e.g. `--cpu-prof`). */
  readonly nodeFlags?: readonly string[];
}

export interface NodeProcess {
  readonly url: string;
  readonly clusterId: string;
  readonly token: string;
  /** From spawning the process to its "listening" line (log replayed, participants started). */
  readonly listenMs: number;
  /** CPU time the node process has used so far (user + system, all threads); NaN off Linux. */
  cpuMs(): number;
  /** The node process's peak resident set (VmHWM), in MB; NaN off Linux. */
  peakRssMb(): number;
  /** The node process's resident set now (VmRSS), and its anonymous part (RssAnon), in MB. */
  rssMb(): { readonly rss: number; readonly anon: number };
  /** SIGTERM, then SIGKILL if it has not exited in time; removes a directory it created. */
  stop(): Promise<void>;
  /** SIGKILL (a crash): nothing is drained or flushed; removes a directory it created. */
  kill(): Promise<void>;
}

const startTimeoutMs = 30_000;
const stopTimeoutMs = 15_000;
const buildTimeoutMs = 300_000;
const outputLinesKept = 20;
const listening = /listening on (\S+) \(cluster ([a-z0-9-]+)\)/;

export async function startNodeProcess(options: NodeProcessOptions): Promise<NodeProcess> {
  const command = commandFor(options.from, options.log);
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "verdict-bench-")));
  const removeDir = () =>
    options.dir === undefined ? rm(dir, { recursive: true, force: true }) : Promise.resolve();
  const token = randomBytes(24).toString("base64url");
  const config = {
    node: { id: "bench-1", dataDir: join(dir, "data"), host: "127.0.0.1", port: 0 },
    tokens: [{ id: "bench", role: "client", secret: token }],
    participants: [
      ...options.participants.map((p) => ({
        kind: "postgres",
        ...p,
        statementRoles: services.pgStatementRoles,
        schema: options.schema,
        poolSize: options.poolSize,
      })),
      ...(options.otherParticipants ?? []),
    ],
    limits: { inFlightTransactionsMax: options.inFlightTransactionsMax, ...options.limits },
    ...(options.protocol ? { protocol: options.protocol } : {}),
    log: { level: "warn" },
    // Fresh histograms at every scrape: the bench's breakdown diffs two of them.
    metrics: { cacheMs: 0 },
  };
  const configPath = join(dir, "config.json");
  await writeFile(configPath, JSON.stringify(config, null, 2), { mode: 0o600 });

  const args = [...(options.nodeFlags ?? []), ...command, "start", "--config", configPath];
  // Its own process group, so a Ctrl-C at the terminal reaches only the bench, which then
  // stops the node in order; if the bench exits first, the node is told to stop too.
  const env = { ...process.env };
  delete env.VERDICT_FAILPOINTS;
  if (options.failpoints !== undefined) env.VERDICT_FAILPOINTS = options.failpoints;
  const spawnedMs = performance.now();
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const stopOnExit = () => child.kill("SIGTERM");
  process.once("exit", stopOnExit);
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      process.off("exit", stopOnExit);
      resolve();
    }),
  );
  try {
    const { url, clusterId } = await awaitListening(child, options.log);
    return {
      url,
      clusterId,
      token,
      listenMs: performance.now() - spawnedMs,
      cpuMs: () => (child.pid === undefined ? Number.NaN : processCpuMs(child.pid)),
      peakRssMb: () => statusMb(child.pid, "VmHWM"),
      rssMb: () => ({ rss: statusMb(child.pid, "VmRSS"), anon: statusMb(child.pid, "RssAnon") }),
      async stop() {
        await stopChild(child, exited);
        await removeDir();
      },
      async kill() {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill("SIGKILL");
          await exited;
        }
        await removeDir();
      },
    };
  } catch (err) {
    await stopChild(child, exited);
    await removeDir();
    throw err;
  }
}

function commandFor(from: "dist" | "src", log: (line: string) => void): string[] {
  if (from === "src") return ["--import", "tsx", join(repoRoot, "coordinator/cli/main.ts")];
  const main = join(repoRoot, "dist/coordinator/cli/main.js");
  if (!existsSync(main)) {
    log("dist/ is missing: npm run -s build");
    const built = spawnSync("npm", ["run", "-s", "build"], {
      cwd: repoRoot,
      stdio: "inherit",
      timeout: buildTimeoutMs,
    });
    if (!existsSync(main))
      throw new Error(`build failed (status ${built.status}): ${main} missing`);
  } else if (newestSourceMs() > statSync(main).mtimeMs) {
    log("warning: dist/ is older than the sources; `npm run -s build` or use --node src");
  }
  return [main];
}

/** Resolves with the node's URL and cluster id from its start line; rejects if it exits first. */
function awaitListening(
  child: ChildProcess,
  log: (line: string) => void,
): Promise<{ url: string; clusterId: string }> {
  return new Promise((resolve, reject) => {
    const recent: string[] = [];
    let ready = false;
    const onLine = (line: string) => {
      if (ready) {
        log(`[node] ${line}`);
        return;
      }
      recent.push(line);
      if (recent.length > outputLinesKept) recent.shift();
      const match = listening.exec(line);
      if (match?.[1] !== undefined && match[2] !== undefined) {
        ready = true;
        clearTimeout(timer);
        resolve({ url: match[1], clusterId: match[2] });
      }
    };
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on("line", onLine);
    }
    const timer = setTimeout(() => {
      reject(new Error(`node did not listen within ${startTimeoutMs} ms:\n${recent.join("\n")}`));
    }, startTimeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (!ready) {
        reject(
          new Error(`node exited (${code ?? signal}) before listening:\n${recent.join("\n")}`),
        );
      }
    });
  });
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), stopTimeoutMs);
  });
  const late = await Promise.race([exited.then(() => false), timedOut]);
  clearTimeout(timer);
  if (late) {
    child.kill("SIGKILL");
    await exited;
  }
}

/**
 * utime + stime of a process from /proc/<pid>/stat (fields 14 and 15, after the
 * parenthesised command name), in clock ticks of 10 ms (USER_HZ is 100 on Linux).
 */
export function processCpuMs(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return Number.NaN;
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state), so utime (14) and stime (15) are at 11 and 12.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A memory field of /proc/<pid>/status (kB), in MB (VmHWM: peak resident set). */
function statusMb(pid: number | undefined, field: "VmHWM" | "VmRSS" | "RssAnon"): number {
  if (pid === undefined) return Number.NaN;
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return Number.NaN;
  }
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status)?.[1];
  return kb === undefined ? Number.NaN : Number(kb) / 1024;
}

/** Newest modification time of the product's TypeScript sources (bounded walk). */
function newestSourceMs(): number {
  const entriesMax = 20_000;
  const pending = ["coordinator", "participants"].map((d) => join(repoRoot, d));
  let newest = 0;
  let seen = 0;
  while (pending.length > 0 && seen < entriesMax) {
    const dir = pending.pop() ?? "";
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      seen++;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) pending.push(path);
      else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}
