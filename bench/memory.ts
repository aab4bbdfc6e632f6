/**
 * Memory bench: the resident set of one node (local log, real PostgreSQL) with 10,000
 * transactions in flight, and after they finished and were forgotten, as ratios against the
 * same node idle, measured in the same run. See docs/bench.md.
 *
 *   node --import tsx bench/memory.ts [--txns N] [--rounds R] [--clients C] [--note-bytes B]
 *
 * Each round begins N transactions, enlists two PostgreSQL branches in each (an insert of a
 * B-byte note into pg-a and pg-b) and holds them in flight, not committed; then commits them
 * all and waits until the node has forgotten them (retention and idempotency-key age are set
 * short for this). A second round shows whether anything grows with finished transactions.
 * Prints the goal line of the speed issue; exits 1 if a transaction failed or one was left
 * prepared.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { pgStatements, sql, VerdictClient, VerdictError } from "../client/index.js";
import { services } from "../test/support/services.js";
import { dropSchema, withClient } from "./accounts.js";
import { parseOptions, runMain, say } from "./args.js";
import { drain } from "./measure.js";
import { startNodeProcess, type NodeProcess } from "./node-process.js";
import { formatTable } from "./stats.js";

const spec = {
  txns: { default: 10_000, min: 1, max: 100_000, help: "transactions held in flight per round" },
  rounds: { default: 2, min: 1, max: 10, help: "rounds of in flight → finished and forgotten" },
  clients: { default: 16, min: 1, max: 64, help: "concurrent bench clients" },
  "note-bytes": { default: 200, min: 1, max: 65_536, help: "bytes of each branch's insert" },
  node: { default: "dist", choices: ["dist", "src"], help: "run the node from dist/ or src" },
} as const;

/** The goal of the speed issue (issue 13): resident set per node with 10,000 in flight. */
const goalRssMb = 250;
const goalInFlight = 10_000;
/** Short enough that finished transactions and their keys are gone within the run. */
const retentionMs = 2_000;
const keyAgeMs = 5_000;
/**
 * In flight until the bench commits them (enlisting and committing 10,000 take about 90 s
 * here), yet short: a finished transaction is forgotten only after its deadline too
 * (docs/architecture.md §7.4), so a longer one keeps it past `forgetWaitMs`.
 */
const txnTimeoutMs = 150_000;
const settleMs = 2_000;
const forgetWaitMs = 120_000;
const forgetPollMs = 500;
const participantInFlightMax = 256;

interface Sample {
  readonly phase: string;
  readonly rss: number;
  readonly anon: number;
}

async function main(argv: readonly string[]): Promise<number> {
  const options = parseOptions("node --import tsx bench/memory.ts", spec, argv);
  const runId = randomBytes(4).toString("hex");
  const schema = `vbench_${runId}`;
  const table = `bench_memory_${runId}`;
  const urls = [services.pgUrlA, services.pgUrlB];
  say(
    `memory bench ${runId}: ${options.rounds} round(s) of ${options.txns} transactions in ` +
      `flight (2 PostgreSQL branches, ${options["note-bytes"]}-byte notes), ` +
      `${options.clients} clients, node from ${options.node}`,
  );
  for (const url of urls) await createNotes(url, table);
  const node = await startNodeProcess({
    from: options.node as "dist" | "src",
    participants: [],
    // PostgreSQL's max_prepared_transactions (300 here) must cover a participant's in-flight
    // cap, which follows inFlightTransactionsMax by default: capped here, well above what the
    // bench's clients prepare at once. Enlisted, uncommitted transactions hold nothing there.
    otherParticipants: ["pg-a", "pg-b"].map((name, i) => ({
      kind: "postgres",
      name,
      connectionString: urls[i],
      statementRoles: services.pgStatementRoles,
      schema,
      poolSize: options.clients,
      inFlightMax: participantInFlightMax,
    })),
    protocol: { retentionMs },
    schema,
    poolSize: options.clients,
    // Defaults: 10,000 in flight, half of it per principal; the bench's one principal needs all.
    inFlightTransactionsMax: Math.max(goalInFlight, options.txns),
    limits: {
      inFlightTransactionsPerPrincipalMax: Math.max(goalInFlight, options.txns),
      idempotencyKeyAgeMsMax: keyAgeMs,
    },
    log: say,
  });
  const verdict = new VerdictClient({ baseUrl: node.url, token: node.token });
  const samples: Sample[] = [];
  let failed = 0;
  let left: string[] = [];
  try {
    await sleep(settleMs);
    samples.push(sample(node, "idle (baseline)"));
    for (let round = 1; round <= options.rounds; round++) {
      failed += await oneRound(verdict, node, samples, { ...options, round, table });
    }
    left = await drain(`${node.clusterId}:`, urls);
  } finally {
    verdict.close();
    await node.stop();
  }
  for (const url of urls) {
    await withClient(url, (c) => c.query(`drop table if exists ${table}`));
    if (left.length === 0) await dropSchema(url, schema);
  }
  printResults(samples, options.txns);
  const ok = failed === 0 && left.length === 0;
  say(`${failed} transaction(s) failed, ${left.length} branch(es) left prepared`);
  say(ok ? "checks passed" : "CHECKS FAILED");
  return ok ? 0 : 1;
}

/** One round: N in flight, measured; committed, forgotten, measured. Answers the failures. */
async function oneRound(
  verdict: VerdictClient,
  node: NodeProcess,
  samples: Sample[],
  o: { txns: number; clients: number; "note-bytes": number; round: number; table: string },
): Promise<number> {
  const note = "n".repeat(o["note-bytes"]);
  const insert = `insert into ${o.table} (xid, note) values ($1, $2)`;
  const xids: string[] = [];
  let startMs = Date.now();
  await inParallel(o.txns, o.clients, async () => {
    const { xid } = await verdict.begin({ timeoutMs: txnTimeoutMs });
    for (const name of ["pg-a", "pg-b"])
      await verdict.enlist(xid, pgStatements(name, [sql(insert, [xid, note], { expectRows: 1 })]));
    xids.push(xid);
  });
  say(`round ${o.round}: ${xids.length} in flight after ${Date.now() - startMs} ms`);
  await sleep(settleMs);
  samples.push(sample(node, `round ${o.round}: ${xids.length} in flight`));
  startMs = Date.now();
  let failed = 0;
  let next = 0;
  await inParallel(xids.length, o.clients, async () => {
    const xid = xids[next++] ?? "";
    await verdict.commit(xid).catch((err: unknown) => {
      failed += 1;
      if (failed <= 3) say(`commit of ${xid} failed: ${String(err)}`);
    });
  });
  say(`round ${o.round}: committed in ${Date.now() - startMs} ms (${failed} failed)`);
  const forgotten = await awaitForgotten(verdict, xids.at(-1) ?? "");
  say(`round ${o.round}: ${forgotten ? "forgotten" : "NOT forgotten in time"}`);
  await sleep(keyAgeMs + settleMs);
  samples.push(sample(node, `round ${o.round}: finished and forgotten`));
  return failed;
}

/** Runs `count` tasks, `width` at a time. */
async function inParallel(count: number, width: number, task: () => Promise<void>) {
  let started = 0;
  const worker = async () => {
    while (started < count) {
      started += 1;
      await task();
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, worker));
}

/** Waits until the node answers 404 for `xid`: finished, and forgotten after its retention. */
async function awaitForgotten(verdict: VerdictClient, xid: string): Promise<boolean> {
  const deadline = Date.now() + forgetWaitMs;
  while (Date.now() < deadline) {
    try {
      await verdict.status(xid);
    } catch (err) {
      if (err instanceof VerdictError && err.status === 404) return true;
      throw err;
    }
    await sleep(forgetPollMs);
  }
  return false;
}

function sample(node: NodeProcess, phase: string): Sample {
  const { rss, anon } = node.rssMb();
  say(`${phase}: RSS ${rss.toFixed(1)} MB (anonymous ${anon.toFixed(1)} MB)`);
  return { phase, rss, anon };
}

async function createNotes(url: string, table: string): Promise<void> {
  await withClient(url, async (c) => {
    await c.query(`drop table if exists ${table}`);
    await c.query(`create table ${table} (xid text not null, note text not null)`);
  });
}

function printResults(samples: readonly Sample[], txns: number): void {
  const base = samples[0];
  if (!base) return;
  const rows = samples.map((s) => [
    s.phase,
    s.rss.toFixed(1),
    `${(s.rss / base.rss).toFixed(2)}x`,
    s.anon.toFixed(1),
    `${(s.anon / base.anon).toFixed(2)}x`,
  ]);
  say(`\n${formatTable([["phase", "RSS MB", "/idle", "anon MB", "/idle"], ...rows])}\n`);
  const peak = Math.max(...samples.filter((s) => s.phase.includes("in flight")).map((s) => s.rss));
  const finished = samples.filter((s) => s.phase.includes("forgotten"));
  const growth = (finished.at(-1)?.rss ?? Number.NaN) - (finished[0]?.rss ?? Number.NaN);
  if (finished.length > 1)
    say(`growth from the first to the last finished round: ${growth.toFixed(1)} MB`);
  const scale = txns === goalInFlight ? "" : ` (measured with ${txns})`;
  const met = txns >= goalInFlight && peak <= goalRssMb ? "met" : "not met";
  say(
    `RSS per node <= ${goalRssMb} MB with ${goalInFlight} in flight: ${peak.toFixed(1)} MB${scale}, ${met}`,
  );
}

runMain(main);
