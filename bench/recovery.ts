/**
 * Recovery bench: how long a node takes to come back after a crash (SIGKILL) with N
 * transactions (default 1,000) decided commit and not one branch acknowledged, against the
 * same node coming back with N finished transactions in its log (baseline, same run).
 *
 *   node --import tsx bench/recovery.ts [--transactions N] [--node dist|src]
 *
 * How the unfinished log is built: every transaction is a two-branch transfer on two Redis
 * participants (namespaces of one throwaway redis-server: INCRBY -x on one key, +x on another).
 * All N are prepared (phase 1) with the server up; then the server is killed and all N are
 * committed: each decision is durable, every phase-2 call fails. Then the node is SIGKILLed,
 * the server restarted (its AOF, fsynced on every write, keeps the 2N staged branches), and the
 * node started again without the outage. Measured from its spawn: time to listening (log
 * replayed, participants started) and time until both namespaces hold no staged branch and
 * every counter shows its amount exactly once.
 *
 * Why Redis and not PostgreSQL branches: `max_prepared_transactions` (300 in deploy/local) is
 * per server, shared with everyone else's tests, so 1,000 or 2,000 prepared PostgreSQL
 * branches cannot exist at once; and a PostgreSQL branch's phase 2 cannot be held back
 * without stopping the shared server (the `before-commit=hang` failpoint fires on one hit
 * only). Redis branches have no such limit, and their server is this bench's own.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { redis, redisOps, VerdictClient } from "../client/index.js";
import { startThrowawayRedis, type ThrowawayRedis } from "../test/support/throwaway-redis.js";
import { services } from "../test/support/services.js";
import { dropSchema } from "./accounts.js";
import { parseOptions, runMain, say } from "./args.js";
import { startNodeProcess, type NodeProcess } from "./node-process.js";
import { formatMs, formatRatio, formatTable } from "./stats.js";

const spec = {
  transactions: { default: 1_000, min: 1, max: 20_000, help: "transactions in the log" },
  concurrency: { default: 32, min: 1, max: 256, help: "client calls in flight while building" },
  node: { default: "dist", choices: ["dist", "src"], help: "run the node from dist/ or src" },
} as const;

const finishTimeoutMs = 300_000;
const pollMs = 20;

interface Restart {
  readonly name: string;
  readonly listenMs: number;
  /** Until every branch is applied (unfinished log only). */
  readonly finishedMs?: number;
}

async function main(argv: readonly string[]): Promise<number> {
  const options = parseOptions("node --import tsx bench/recovery.ts", spec, argv);
  const n = options.transactions;
  const run = randomBytes(4).toString("hex");
  say(
    `recovery bench ${run}: ${n} transactions, node from ${options.node}; ` +
      `${cpus().length} cpus, load average ${loadavg()[0]?.toFixed(1)}`,
  );
  const server = await startThrowawayRedis();
  const reader = new Redis(server.url, { maxRetriesPerRequest: 1, lazyConnect: true });
  reader.on("error", () => undefined);
  await reader.connect();
  const restarts: Restart[] = [];
  let ok = true;
  try {
    for (const finished of [true, false]) {
      const name = finished ? `${n} finished (baseline)` : `${n} decided, unacknowledged`;
      const r = await oneRun({ name, finished, n, run, server, reader, options });
      ok &&= r.ok;
      restarts.push(r.restart);
    }
  } finally {
    reader.disconnect();
    await server.dispose();
  }
  const base = restarts[0];
  const table = [["log", "to listening ms", "to all committed ms", "listening vs baseline"]];
  for (const r of restarts) {
    table.push([
      r.name,
      formatMs(r.listenMs),
      r.finishedMs === undefined ? "-" : formatMs(r.finishedMs),
      base ? formatRatio(r.listenMs, base.listenMs) : "n/a",
    ]);
  }
  say(`\n${formatTable(table)}\n`);
  const unfinished = restarts[1];
  if (base && unfinished?.finishedMs !== undefined) {
    say(
      `all ${n} committed ${formatMs(unfinished.finishedMs)} ms after the spawn: ` +
        `${formatRatio(unfinished.finishedMs, base.listenMs)} the baseline's time to listening; ` +
        `${formatMs((unfinished.finishedMs - unfinished.listenMs) / n)} ms per transaction ` +
        `after listening`,
    );
  }
  say(ok ? "checks passed" : "CHECKS FAILED");
  return ok ? 0 : 1;
}

async function oneRun(r: {
  readonly name: string;
  readonly finished: boolean;
  readonly n: number;
  readonly run: string;
  readonly server: ThrowawayRedis;
  readonly reader: Redis;
  readonly options: { readonly concurrency: number; readonly node: string };
}): Promise<{ ok: boolean; restart: Restart }> {
  const tag = `${r.run}-${r.finished ? "f" : "u"}`;
  const dir = await mkdtemp(join(tmpdir(), "verdict-bench-recovery-"));
  const schema = `vbench_${tag.replace("-", "_")}`;
  const ns = { a: `rb-${tag}-a`, b: `rb-${tag}-b` };
  const start = () =>
    startNodeProcess({
      from: r.options.node as "dist" | "src",
      dir,
      participants: [],
      otherParticipants: [
        // Configured but never enlisted; its own in-flight bound stays within the server's
        // max_prepared_transactions (the node's default would be inFlightTransactionsMax).
        {
          name: "pg-a",
          kind: "postgres",
          connectionString: services.pgUrlA,
          statementRoles: services.pgStatementRoles,
          schema,
          poolSize: 2,
          inFlightMax: 100,
        },
        { name: "redis-a", kind: "redis", url: r.server.url, namespace: ns.a, inFlightMax: 50_000 },
        { name: "redis-b", kind: "redis", url: r.server.url, namespace: ns.b, inFlightMax: 50_000 },
      ],
      schema,
      poolSize: 4,
      inFlightTransactionsMax: r.n * 2 + 100,
      // Answer 202 at once when phase 2 cannot run; retry phase 2 at most every second.
      protocol: { commitWaitMs: 0, phase2BackoffMaxMs: 1_000 },
      log: () => undefined,
    });
  const key = (side: "a" | "b", i: number) => `rbench:${tag}:${side}:${i}`;
  const amount = (i: number) => 1 + (i % 100);
  let node: NodeProcess | undefined;
  try {
    node = await start();
    const verdict = new VerdictClient({ baseUrl: node.url, token: node.token });
    const xids: string[] = new Array<string>(r.n);
    await pool(r.n, r.options.concurrency, async (i) => {
      const { xid } = await verdict.begin({ timeoutMs: 600_000 });
      await verdict.enlist(xid, redisOps("redis-a", [redis.incrby(key("a", i), -amount(i))]));
      await verdict.enlist(xid, redisOps("redis-b", [redis.incrby(key("b", i), amount(i))]));
      if (r.finished) {
        await verdict.commit(xid);
      } else {
        const view = await verdict.prepare(xid);
        if (view.state !== "prepared") throw new Error(`${xid}: ${view.state}`);
      }
      xids[i] = xid;
    });
    if (!r.finished) {
      await r.server.kill();
      await pool(r.n, r.options.concurrency, async (i) => {
        const view = await verdict.commit(xids[i] ?? "");
        if (view.state !== "committing") throw new Error(`${xids[i]}: ${view.state}`);
      });
    } else {
      await untilApplied(r.reader, ns, 0, finishTimeoutMs);
    }
    await node.kill();
    node = undefined;
    if (!r.finished) await r.server.restart();
    const staged = await stagedCount(r.reader, ns);
    const stagedWant = r.finished ? 0 : r.n * 2;
    if (staged !== stagedWant) {
      throw new Error(
        `assertion: ${staged} branches staged before the restart, ${stagedWant} expected`,
      );
    }
    const spawnedMs = performance.now();
    node = await start();
    const listenMs = node.listenMs;
    let finishedMs: number | undefined;
    if (!r.finished) {
      await untilApplied(r.reader, ns, 0, finishTimeoutMs);
      finishedMs = performance.now() - spawnedMs;
    }
    const ok = await checkCounters(r.reader, r.n, key, amount);
    say(`${r.name}: listening after ${formatMs(listenMs)} ms; counters ${ok ? "exact" : "WRONG"}`);
    return {
      ok,
      restart: { name: r.name, listenMs, ...(finishedMs === undefined ? {} : { finishedMs }) },
    };
  } finally {
    await node?.stop();
    await rm(dir, { recursive: true, force: true });
    await dropSchema(services.pgUrlA, schema).catch(() => undefined);
  }
}

async function stagedCount(reader: Redis, ns: { a: string; b: string }): Promise<number> {
  return (await reader.scard(`${ns.a}:prepared`)) + (await reader.scard(`${ns.b}:prepared`));
}

/** Until at most `left` branches are staged in both namespaces; bounded in time. */
async function untilApplied(
  reader: Redis,
  ns: { a: string; b: string },
  left: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; performance.now() < deadline && i < timeoutMs / pollMs; i++) {
    if ((await stagedCount(reader, ns)) <= left) return;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  throw new Error(`branches still staged after ${timeoutMs} ms`);
}

/** Every debit and credit applied exactly once. */
async function checkCounters(
  reader: Redis,
  n: number,
  key: (side: "a" | "b", i: number) => string,
  amount: (i: number) => number,
): Promise<boolean> {
  const chunk = 500;
  for (let from = 0; from < n; from += chunk) {
    const ids = Array.from({ length: Math.min(chunk, n - from) }, (_, j) => from + j);
    const a = await reader.mget(ids.map((i) => key("a", i)));
    const b = await reader.mget(ids.map((i) => key("b", i)));
    for (const [j, i] of ids.entries()) {
      if (Number(a[j]) !== -amount(i) || Number(b[j]) !== amount(i)) {
        say(`transaction ${i}: a=${a[j]} b=${b[j]}, expected ∓${amount(i)}`);
        return false;
      }
    }
  }
  return true;
}

/** Runs `work(0..count-1)` with at most `concurrency` at once; the first failure throws. */
async function pool(
  count: number,
  concurrency: number,
  work: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

runMain(main);
