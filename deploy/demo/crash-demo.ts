/**
 * Crash-recovery demo: a Verdict node is killed (SIGKILL, by its own failpoint) in the middle
 * of ten concurrent transfers that each touch PostgreSQL (two databases), Redis and Kafka;
 * the demo shows what the crash left behind, restarts the node, and checks that every
 * transfer ended all-or-nothing in every store. Exit 0 when every check holds, 1 otherwise.
 *
 *   deploy/demo/crash-demo.sh          (services up, dist/ built, then this script)
 *
 * It uses only its own things, so it runs beside the demo node and the tests, and again and
 * again: a scratch cluster under .local/crash-demo/ (config, data dir, node logs), the
 * PostgreSQL schema `verdict_crash_demo` for Verdict's tables, the Redis namespace
 * `verdict-crash-demo`, the Kafka marker topic `verdict-crash-demo-markers`, accounts 9001-9010
 * of the table `accounts`, Redis keys `crash-demo:credited:*` and the topic `crash-demo-events`.
 * Each run starts that scratch cluster afresh (new cluster id); see `resetWorld`.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { openSync, closeSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import type { Kafka } from "kafkajs";
import type pg from "pg";
import {
  TransactionAbortedError,
  VerdictClient,
  VerdictError,
  kafkaMessages,
  message,
  pgStatements,
  redis,
  redisOps,
  sql,
} from "../../client/index.js";
import { CommittedReader } from "../../participants/kafka/reader.js";
import {
  databases,
  ensureAccounts,
  ensureTopic,
  kafkaClient,
  pgPool,
  preparedGids,
  services,
  type Database,
} from "./services.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const demoDir = join(root, ".local", "crash-demo");
const dataDir = join(demoDir, "node");
const configPath = join(demoDir, "verdict.yaml");
const pidPath = join(demoDir, "node.pid");
const cliPath = join(root, "dist", "coordinator", "cli", "main.js");

const pgSchema = "verdict_crash_demo";
const redisNamespace = "verdict-crash-demo";
const markerTopic = "verdict-crash-demo-markers";
const eventTopic = "crash-demo-events";
const eventPartitions = 3;
const creditKey = (account: number) => `crash-demo:credited:${account}`;

/** The 4th decision made durable kills the node before any branch hears of it. */
const failpoints = "after-decision-durable=crash@4";
const transfersCount = 10;
const firstAccount = 9001;
const initialBalance = 1_000;
/** Short, so that transactions left undecided by the crash reach their deadline soon after. */
const transactionTimeoutMs = 5_000;
/** Starts are spread a little, so that the crash finds transfers at different steps. */
const startSpreadMs = 15;

// Every wait is bounded; the whole demo takes ~15 s.
const nodeStartTimeoutMs = 20_000;
const crashWaitMs = 20_000;
const settleTimeoutMs = 30_000;
const nodeStopTimeoutMs = 15_000;
const pollMs = 250;
const httpTimeoutMs = 5_000;
const scanCallsMax = 1_000;
const kafkaSettleReadsMax = 250;

// ---------------------------------------------------------------- output for the reader

function heading(n: number, text: string): void {
  console.log(`\n== ${n}. ${text}`);
}
function say(text: string): void {
  console.log(`   ${text}`);
}
function table(rows: readonly (readonly string[])[]): void {
  const widths: number[] = [];
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  for (const row of rows) say(row.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  "));
}

// ---------------------------------------------------------------- the world

interface Transfer {
  readonly n: number;
  /** Debited in verdict_a. */
  readonly from: number;
  /** Credited in verdict_b, and its Redis counter. */
  readonly to: number;
  readonly amount: number;
  /** The Kafka event's key: the run id keeps this run's events apart from earlier runs'. */
  readonly eventKey: string;
}

type ToldKind = "committed" | "committing" | "aborted" | "no answer";
interface Outcome {
  readonly transfer: Transfer;
  readonly xid: string | undefined;
  readonly told: ToldKind;
  readonly detail: string;
}

interface World {
  readonly pools: Record<Database, pg.Pool>;
  readonly redis: Redis;
  readonly kafka: Kafka;
  readonly reader: CommittedReader;
  close(): Promise<void>;
}

const accountIds = Array.from({ length: transfersCount }, (_, i) => firstAccount + i);

async function openWorld(): Promise<World> {
  const pools = { verdict_a: pgPool("verdict_a"), verdict_b: pgPool("verdict_b") };
  const redisClient = new Redis(services.redisUrl, {
    commandTimeout: httpTimeoutMs,
    connectTimeout: httpTimeoutMs,
    maxRetriesPerRequest: 1,
  });
  const kafka = kafkaClient("crash-demo");
  const reader = await CommittedReader.open(kafka, { owner: "crash-demo" });
  return {
    pools,
    redis: redisClient,
    kafka,
    reader,
    async close() {
      await reader.close().catch(() => undefined);
      redisClient.disconnect();
      await Promise.all(Object.values(pools).map((p) => p.end()));
    },
  };
}

/** A node of an earlier run still alive (interrupted demo): ours by pid file and command line. */
async function killStaleNode(): Promise<void> {
  const pid = Number((await readFile(pidPath, "utf8").catch(() => "")).trim());
  if (!Number.isInteger(pid) || pid <= 0) return;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  if (!cmdline.includes(configPath)) return;
  say(`a node of an earlier run is still running (pid ${pid}): stopping it`);
  process.kill(pid, "SIGKILL");
  for (let i = 0; i < 50 && (await readFile(`/proc/${pid}/cmdline`).catch(() => null)); i++) {
    await sleep(100);
  }
}

/**
 * Starts the scratch cluster afresh. An interrupted earlier run may have left prepared
 * transactions of its (now discarded) cluster: they hold row locks on the demo's accounts and
 * on the marker table, so they are rolled back first (a real operator would restart the node
 * and let recovery do it; here the whole cluster is being thrown away). Then Verdict's schema,
 * namespace and data dir go, the accounts are reset, and the event topic is made sure of.
 */
async function resetWorld(w: World): Promise<void> {
  await killStaleNode();
  const oldClusterIds = new Set<string>();
  const fromDisk = (await readFile(join(dataDir, "cluster-id"), "utf8").catch(() => "")).trim();
  if (fromDisk !== "") oldClusterIds.add(fromDisk);
  for (const db of databases) {
    const pool = w.pools[db];
    const { rows: tables } = await pool.query<{ t: string | null }>("select to_regclass($1) t", [
      `${pgSchema}.cluster`,
    ]);
    if (tables[0]?.t) {
      const { rows } = await pool.query<{ id: string }>(
        `select cluster_id id from "${pgSchema}".cluster`,
      );
      for (const r of rows) oldClusterIds.add(r.id);
    }
  }
  let rolledBack = 0;
  for (const db of databases) {
    for (const id of oldClusterIds) {
      for (const gid of await preparedGids(w.pools[db], id)) {
        // Utility statements take no parameters: the gid is escaped as a literal.
        await w.pools[db].query(`rollback prepared '${gid.replaceAll("'", "''")}'`);
        rolledBack++;
      }
    }
    await w.pools[db].query(`drop schema if exists "${pgSchema}" cascade`);
  }
  if (rolledBack > 0) say(`rolled back ${rolledBack} prepared branch(es) an earlier run left`);
  await ensureAccounts(w.pools.verdict_a, accountIds, initialBalance, true);
  await ensureAccounts(w.pools.verdict_b, accountIds, initialBalance, true);
  const stale = await scanKeys(w.redis, `${redisNamespace}:*`);
  if (stale.length > 0) await w.redis.del(...stale);
  await w.redis.del(...accountIds.map(creditKey));
  await rm(dataDir, { recursive: true, force: true });
  const admin = w.kafka.admin();
  await admin.connect();
  try {
    await ensureTopic(admin, eventTopic, eventPartitions);
  } finally {
    await admin.disconnect();
  }
}

/** Keys matching `pattern` (SCAN, bounded): the demo's reset only; Verdict itself never scans. */
async function scanKeys(client: Redis, pattern: string): Promise<string[]> {
  const keys = new Set<string>();
  let cursor = "0";
  for (let calls = 0; calls < scanCallsMax; calls++) {
    const [next, batch] = await client.scan(cursor, "MATCH", pattern, "COUNT", 500);
    for (const k of batch) keys.add(k);
    if (next === "0") return [...keys];
    cursor = next;
  }
  throw new Error(`SCAN ${pattern} did not finish in ${scanCallsMax} calls`);
}

// ---------------------------------------------------------------- the node

interface NodeProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly logPath: string;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

function configYaml(port: number, clientToken: string, adminToken: string): string {
  const pg = (name: string, db: Database) =>
    `  - { name: ${name}, kind: postgres, connectionString: "${services.pgUrl(db)}", schema: ${pgSchema} }`;
  return [
    "# Crash-demo node, written by deploy/demo/crash-demo.ts on every run: loopback only.",
    "profile: local-demo",
    `node: { id: crash-demo-1, dataDir: "${dataDir}", host: 127.0.0.1, port: ${port} }`,
    "tokens:",
    `  - { id: crash-demo-client, role: client, secret: "${clientToken}" }`,
    `  - { id: crash-demo-admin, role: admin, secret: "${adminToken}" }`,
    "# Below PostgreSQL's max_prepared_transactions (300 in deploy/local), as the node checks.",
    "limits: { inFlightTransactionsMax: 64 }",
    "# Recovery also scans every 2 s (default 30 s), so the demo does not wait for it.",
    "protocol: { recoveryIntervalMs: 2000 }",
    "participants:",
    pg("pg-a", "verdict_a"),
    pg("pg-b", "verdict_b"),
    `  - { name: redis, kind: redis, url: "${services.redisUrl}", namespace: ${redisNamespace} }`,
    `  - { name: kafka, kind: kafka, brokers: ["${services.kafkaBrokers.join('", "')}"], markerTopic: ${markerTopic}, attemptTimeoutMs: 10000 }`,
    "",
  ].join("\n");
}

async function startNode(
  port: number,
  label: string,
  failpointSpec?: string,
): Promise<NodeProcess> {
  const logPath = join(demoDir, `${label}.log`);
  const log = openSync(logPath, "w");
  const env = { ...process.env };
  delete env.VERDICT_FAILPOINTS;
  if (failpointSpec !== undefined) env.VERDICT_FAILPOINTS = failpointSpec;
  const child = spawn(process.execPath, [cliPath, "start", "--config", configPath], {
    cwd: root,
    env,
    stdio: ["ignore", log, log],
  });
  closeSync(log);
  await writeFile(pidPath, `${child.pid ?? ""}\n`);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const node = { child, url: `http://127.0.0.1:${port}`, exited, logPath };
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + nodeStartTimeoutMs;
  while (Date.now() < deadline && !gone) {
    const ok = await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(1_000) })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return node;
    await sleep(pollMs);
  }
  child.kill("SIGKILL");
  throw new Error(
    `the node did not answer /healthz within ${nodeStartTimeoutMs} ms; see ${logPath}`,
  );
}

/** SIGTERM (the node drains), then SIGKILL if it is still there after the bound. */
async function stopNode(node: NodeProcess): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return;
  node.child.kill("SIGTERM");
  const stopped = await Promise.race([
    node.exited.then(() => true),
    sleep(nodeStopTimeoutMs, false),
  ]);
  if (!stopped) {
    node.child.kill("SIGKILL");
    await node.exited;
  }
  await rm(pidPath, { force: true });
}

async function adminGet(node: NodeProcess, token: string, path: string): Promise<unknown> {
  const response = await fetch(node.url + path, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(httpTimeoutMs),
  });
  if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status}`);
  return response.json();
}

// ---------------------------------------------------------------- the transfers

function makeTransfers(runId: string): Transfer[] {
  return accountIds.map((account, i) => ({
    n: i + 1,
    from: account,
    to: account,
    amount: 10 * (i + 1),
    eventKey: `${runId}:${i + 1}`,
  }));
}

/** One transfer: debit in verdict_a, credit in verdict_b, a Redis counter, a Kafka event. */
async function runTransfer(client: VerdictClient, t: Transfer): Promise<Outcome> {
  let xid: string | undefined;
  try {
    await sleep(t.n * startSpreadMs);
    const tx = await client.begin({
      timeoutMs: transactionTimeoutMs,
      labels: { demo: "crash", transfer: String(t.n) },
    });
    xid = tx.xid;
    const debit = "update accounts set balance = balance - $1 where id = $2";
    const credit = "update accounts set balance = balance + $1 where id = $2";
    await client.enlist(
      xid,
      pgStatements("pg-a", [sql(debit, [t.amount, t.from], { expectRows: 1 })]),
    );
    await client.enlist(
      xid,
      pgStatements("pg-b", [sql(credit, [t.amount, t.to], { expectRows: 1 })]),
    );
    await client.enlist(xid, redisOps("redis", [redis.incrby(creditKey(t.to), t.amount)]));
    const event = JSON.stringify({ transfer: t.n, from: t.from, to: t.to, amount: t.amount });
    await client.enlist(
      xid,
      kafkaMessages("kafka", [message(eventTopic, event, { key: t.eventKey })]),
    );
    const view = await client.commit(xid);
    return {
      transfer: t,
      xid,
      told: view.state === "committed" ? "committed" : "committing",
      detail: "",
    };
  } catch (err) {
    if (err instanceof TransactionAbortedError) {
      return { transfer: t, xid, told: "aborted", detail: err.reason?.code ?? err.message };
    }
    const detail = err instanceof VerdictError ? err.code : String(err);
    return { transfer: t, xid, told: "no answer", detail };
  }
}

// ---------------------------------------------------------------- reading every store

interface Effects {
  /** Per transfer number. */
  readonly pgA: Map<number, string>;
  readonly pgB: Map<number, string>;
  readonly redis: Map<number, string>;
  readonly kafka: Map<number, number>;
  readonly balances: { a: Map<number, number>; b: Map<number, number> };
  readonly credited: Map<number, number | null>;
  readonly gids: Record<Database, string[]>;
  readonly staged: string[];
  /** Events of this run whose key names no transfer (there must be none). */
  readonly strayEvents: number;
}

async function balancesOf(pool: pg.Pool): Promise<Map<number, number>> {
  const { rows } = await pool.query<{ id: string; balance: string }>(
    "select id, balance from accounts where id = any($1::bigint[])",
    [accountIds],
  );
  return new Map(rows.map((r) => [Number(r.id), Number(r.balance)]));
}

/** Events of this run, counted per transfer; `settled`: wait until no Kafka transaction is open. */
async function eventsOf(
  w: World,
  runId: string,
  settled: boolean,
): Promise<{ perTransfer: Map<number, number>; stray: number }> {
  const perTransfer = new Map<number, number>();
  let stray = 0;
  for (let p = 0; p < eventPartitions; p++) {
    const read = settled
      ? await w.reader.readSettled(eventTopic, p, kafkaSettleReadsMax)
      : await w.reader.readPartition(eventTopic, p);
    for (const r of read.records) {
      if (!r.key?.startsWith(`${runId}:`)) continue;
      const n = Number(r.key.slice(runId.length + 1));
      if (Number.isInteger(n) && n >= 1 && n <= transfersCount) {
        perTransfer.set(n, (perTransfer.get(n) ?? 0) + 1);
      } else stray++;
    }
  }
  return { perTransfer, stray };
}

async function readEffects(
  w: World,
  outcomes: readonly Outcome[],
  clusterId: string,
  runId: string,
  settled: boolean,
): Promise<Effects> {
  const gids = {
    verdict_a: await preparedGids(w.pools.verdict_a, clusterId),
    verdict_b: await preparedGids(w.pools.verdict_b, clusterId),
  };
  const staged = await w.redis.smembers(`${redisNamespace}:prepared`);
  const a = await balancesOf(w.pools.verdict_a);
  const b = await balancesOf(w.pools.verdict_b);
  const credits = await w.redis.mget(...accountIds.map(creditKey));
  const credited = new Map(
    accountIds.map((id, i) => [id, credits[i] == null ? null : Number(credits[i])]),
  );
  const events = await eventsOf(w, runId, settled);
  const has = (list: readonly string[], xid: string | undefined) =>
    xid !== undefined && list.some((id) => id.includes(`:${xid}:`));
  const effects: Effects = {
    pgA: new Map(),
    pgB: new Map(),
    redis: new Map(),
    kafka: events.perTransfer,
    balances: { a, b },
    credited,
    gids,
    staged,
    strayEvents: events.stray,
  };
  for (const { transfer: t, xid } of outcomes) {
    const pgState = (balance: number | undefined, applied: number, prepared: boolean) =>
      prepared
        ? "prepared"
        : balance === applied
          ? "applied"
          : balance === initialBalance
            ? "-"
            : `?${balance}`;
    effects.pgA.set(
      t.n,
      pgState(a.get(t.from), initialBalance - t.amount, has(gids.verdict_a, xid)),
    );
    effects.pgB.set(t.n, pgState(b.get(t.to), initialBalance + t.amount, has(gids.verdict_b, xid)));
    const c = credited.get(t.to);
    effects.redis.set(
      t.n,
      has(staged, xid) ? "staged" : c === t.amount ? "applied" : c == null ? "-" : `?${c}`,
    );
  }
  return effects;
}

/** One row per transfer; `extra`: a last column (its title, and its value per transfer). */
function effectsTable(
  outcomes: readonly Outcome[],
  e: Effects,
  extra: { title: string; values: Map<number, string> },
): void {
  const header = ["#", "amount", "client was told", "pg-a debit", "pg-b credit", "redis", "kafka"];
  header.push(extra.title);
  const rows = [header];
  for (const o of outcomes) {
    const t = o.transfer;
    const events = e.kafka.get(t.n) ?? 0;
    const row = [
      String(t.n),
      String(t.amount),
      o.detail === "" ? o.told : `${o.told} (${o.detail})`,
      e.pgA.get(t.n) ?? "",
      e.pgB.get(t.n) ?? "",
      e.redis.get(t.n) ?? "",
      events === 0 ? "-" : events === 1 ? "1 event" : `${events} events`,
    ];
    row.push(extra.values.get(t.n) ?? "");
    rows.push(row);
  }
  table(rows);
}

/**
 * The decision log, read offline: prints its `preparing` and `decide` lines (xids named by
 * transfer) and answers what it says of each transfer: `commit`, `abort`, `undecided` (a
 * `preparing` entry only) or `not in log`.
 */
async function showLog(outcomes: readonly Outcome[]): Promise<Map<number, string>> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [cliPath, "log", "dump", "--data-dir", dataDir],
    { timeout: httpTimeoutMs * 3, maxBuffer: 16 * 1024 * 1024 },
  );
  const byXid = new Map(outcomes.flatMap((o) => (o.xid ? [[o.xid, o.transfer.n] as const] : [])));
  const says = new Map<number, string>(outcomes.map((o) => [o.transfer.n, "not in log"]));
  say(`$ verdict log dump --data-dir ${dataDir}   (its preparing and decide lines)`);
  for (const line of stdout.split("\n")) {
    const m = /^\s*\d+\s+t\d+\s+\S+\s+(preparing|decide)\s+(\S+)\s+(\S+)/.exec(line);
    if (!m) continue;
    const n = byXid.get(m[2] ?? "");
    if (n !== undefined) says.set(n, m[1] === "decide" ? (m[3] ?? "?") : "undecided");
    const shortened = line
      .replace(/; principal .*$/, "")
      .replace(/\d{4}-\d{2}-\d{2}T(\d{2}:\d{2}:\d{2}\.\d{3})Z/, "$1");
    say(`  ${shortened}${n === undefined ? "" : `   <- transfer #${n}`}`);
  }
  return says;
}

// ---------------------------------------------------------------- the demo

async function main(): Promise<number> {
  const runId = randomBytes(4).toString("hex");
  const clientToken = randomBytes(18).toString("hex");
  const adminToken = randomBytes(18).toString("hex");
  await mkdir(demoDir, { recursive: true });
  const w = await openWorld();
  let node: NodeProcess | undefined;
  const stopOnSignal = () => {
    node?.child.kill("SIGTERM");
    process.exit(130);
  };
  process.once("SIGINT", stopOnSignal);
  try {
    heading(1, "A fresh scratch cluster");
    await resetWorld(w);
    const port = await freePort();
    await writeFile(configPath, configYaml(port, clientToken, adminToken));
    say(`config ${configPath}: participants pg-a (verdict_a), pg-b (verdict_b), redis, kafka`);
    say(
      `accounts ${firstAccount}-${firstAccount + transfersCount - 1} hold ${initialBalance} in each database`,
    );
    say(`Redis counters crash-demo:credited:* and Kafka topic ${eventTopic} (run ${runId})`);

    heading(2, `Start the node with VERDICT_FAILPOINTS=${failpoints}`);
    say("the 4th decision made durable kills the node (SIGKILL) before its branches learn of it");
    node = await startNode(port, "node-crash", failpoints);
    const clusterId = (
      (await adminGet(node, adminToken, "/admin/v1/cluster")) as { clusterId: string }
    ).clusterId;
    say(`node up at ${node.url}, cluster ${clusterId}; log ${node.logPath}`);

    heading(3, `${transfersCount} concurrent transfers through the SDK`);
    say("each: -amount on accounts@verdict_a, +amount on accounts@verdict_b,");
    say(`      INCRBY on its Redis counter, one event on ${eventTopic}; one global transaction`);
    // Few retries: while the node is dead a client gives up quickly instead of waiting for the restart.
    const client = new VerdictClient({
      baseUrl: node.url,
      token: clientToken,
      timeoutMs: 10_000,
      retry: { attemptsMax: 2, backoffMsInitial: 50, backoffMsMax: 200 },
      outcomeChecksMax: 1,
    });
    const transfers = makeTransfers(runId);
    const outcomes = await Promise.all(transfers.map((t) => runTransfer(client, t)));
    const crashed = await Promise.race([node.exited, sleep(crashWaitMs, undefined)]);
    if (crashed?.signal === "SIGKILL") say("the node died by SIGKILL at the failpoint, mid-way");
    else {
      say(
        `the failpoint did not fire (${JSON.stringify(crashed ?? "still running")}): killing the node`,
      );
      node.child.kill("SIGKILL");
      await node.exited;
    }

    heading(4, "The damage, read directly from each store while the node is down");
    const logSays = await showLog(outcomes);
    const before = await readEffects(w, outcomes, clusterId, runId, false);
    console.log("");
    effectsTable(outcomes, before, { title: "decision log", values: logSays });
    say(
      "applied: visible to every reader; prepared/staged: held by Verdict, invisible; -: nothing",
    );
    say(
      "decision commit, branches not all applied: recovery must finish them (decisions never change)",
    );
    say(
      "undecided or not in log: presumed abort once its deadline passes; prepared branches roll back",
    );
    say(
      "Kafka events are produced in phase 2 only, after the databases: none of an undecided transfer",
    );
    for (const db of databases) {
      say(`pg_prepared_xacts in ${db}: ${before.gids[db].length}`);
      for (const gid of before.gids[db]) say(`  ${gid}`);
    }
    say(`Redis ${redisNamespace}:prepared (staged branches): ${before.staged.length}`);
    for (const id of before.staged) say(`  ${id}`);

    heading(5, "Restart the node without failpoints; recovery finishes the work");
    node = await startNode(port, "node-recovery");
    say(`node up again at ${node.url}; log ${node.logPath}`);
    const finals = new Map<number, string>();
    const started = Date.now();
    let open: string[] = [];
    for (let i = 0; i < Math.ceil(settleTimeoutMs / pollMs); i++) {
      open = [];
      const list = (await adminGet(
        node,
        adminToken,
        "/admin/v1/transactions?inDoubt=true&limit=100",
      )) as {
        transactions: { xid: string; inDoubt: boolean }[];
      };
      const inDoubt = list.transactions.filter((t) => t.inDoubt).length;
      if (inDoubt > 0) open.push(`${inDoubt} in doubt`);
      for (const db of databases) {
        const n = (await preparedGids(w.pools[db], clusterId)).length;
        if (n > 0) open.push(`${n} prepared in ${db}`);
      }
      const staged = await w.redis.scard(`${redisNamespace}:prepared`);
      if (staged > 0) open.push(`${staged} staged in Redis`);
      for (const o of outcomes) {
        if (o.xid === undefined) {
          finals.set(o.transfer.n, "never began");
          continue;
        }
        const state = await finalState(client, o.xid);
        finals.set(o.transfer.n, state);
        if (state !== "committed" && state !== "aborted" && !state.startsWith("aborted ")) {
          open.push(`#${o.transfer.n} ${state}`);
        }
      }
      if (open.length === 0 || Date.now() - started > settleTimeoutMs) break;
      await sleep(pollMs);
    }
    if (open.length > 0) say(`not settled after ${settleTimeoutMs} ms: ${open.join(", ")}`);
    else
      say(
        `recovery settled in ${Date.now() - started} ms: nothing in doubt, no prepared branch left`,
      );

    heading(6, "The result, read directly from each store (Kafka with read_committed)");
    const after = await readEffects(w, outcomes, clusterId, runId, true);
    effectsTable(outcomes, after, { title: "final state", values: finals });
    const failures = check(outcomes, after, finals, open);
    console.log("");
    if (failures.length === 0) {
      say("ALL CHECKS HOLD: every transfer all-or-nothing across PostgreSQL, Redis and Kafka");
    } else {
      say(`${failures.length} CHECK(S) FAILED:`);
      for (const f of failures) say(`  - ${f}`);
    }
    return failures.length === 0 ? 0 : 1;
  } finally {
    if (node) await stopNode(node);
    process.removeListener("SIGINT", stopOnSignal);
    await w.close();
  }
}

async function finalState(client: VerdictClient, xid: string): Promise<string> {
  try {
    return (await client.status(xid)).state;
  } catch (err) {
    // A transaction begun but not yet committing lived only in the dead node's memory.
    if (err instanceof VerdictError && err.code === "transaction-not-found") {
      return "aborted (never logged)";
    }
    return `unknown (${err instanceof VerdictError ? err.code : String(err)})`;
  }
}

/** Every check, printed as it is made; returns the ones that failed. */
function check(
  outcomes: readonly Outcome[],
  e: Effects,
  finals: Map<number, string>,
  open: readonly string[],
): string[] {
  const failures: string[] = [];
  const expect = (ok: boolean, what: string) => {
    say(`${ok ? "ok  " : "FAIL"} ${what}`);
    if (!ok) failures.push(what);
  };
  let committedAmount = 0;
  let allOrNothing = true;
  let toldTruth = true;
  let exactlyOnce = true;
  for (const o of outcomes) {
    const t = o.transfer;
    const final = finals.get(t.n) ?? "";
    const committed = final === "committed";
    if (committed) committedAmount += t.amount;
    const want = committed ? "applied" : "-";
    const events = e.kafka.get(t.n) ?? 0;
    if (
      e.pgA.get(t.n) !== want ||
      e.pgB.get(t.n) !== want ||
      e.redis.get(t.n) !== want ||
      events !== (committed ? 1 : 0)
    ) {
      allOrNothing = false;
      say(
        `     #${t.n} (${final}): pg-a ${e.pgA.get(t.n)}, pg-b ${e.pgB.get(t.n)}, redis ${e.redis.get(t.n)}, ${events} event(s)`,
      );
    }
    if (committed && events !== 1) exactlyOnce = false;
    const toldCommit = o.told === "committed" || o.told === "committing";
    if ((toldCommit && !committed) || (o.told === "aborted" && committed)) {
      toldTruth = false;
      say(`     #${t.n}: told ${o.told}, ended ${final}`);
    }
  }
  expect(
    open.length === 0,
    "recovery settled: nothing in doubt, no prepared branch in PostgreSQL or Redis",
  );
  expect(allOrNothing, "every transfer is all-or-nothing across pg-a, pg-b, Redis and Kafka");
  expect(toldTruth, "every client told committed/aborted got exactly that (no answer: either)");
  const total = (m: Map<number, number>) => [...m.values()].reduce((s, v) => s + v, 0);
  const money = total(e.balances.a) + total(e.balances.b);
  expect(
    money === 2 * transfersCount * initialBalance,
    `money conserved: ${money} in both databases = ${2 * transfersCount * initialBalance} at the start`,
  );
  const credited = [...e.credited.values()].reduce<number>((s, v) => s + (v ?? 0), 0);
  expect(
    credited === committedAmount,
    `Redis counters sum to the committed amount (${credited} = ${committedAmount})`,
  );
  expect(
    exactlyOnce && e.strayEvents === 0,
    "each committed transfer's event is in Kafka exactly once, no other",
  );
  return failures;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(
      `\ncrash demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    process.exit(1);
  },
);
