/**
 * The random-kill soak: a real coordinator process (the compiled build) with pg-a, pg-b,
 * redis-main and kafka-events, loaded by concurrent clients running the four-branch
 * transfers of soak-workload.ts, SIGKILLed at a seeded random moment every killMsMin..killMsMax
 * after it listens and restarted at once, `kills` times; the clients keep running through the
 * kills and record what they were told. Then a last restart, a bounded wait for recovery to
 * settle, and the checks of soak-check.ts, read directly from the servers.
 *
 * Seeds: the kill times draw from `seed`, client c's transfers from `seed + 1 + c`; the
 * interleaving inside the process stays the OS's, so a replay repeats the schedule and the
 * workload, not every race.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { awaitSettled, type FinalState } from "../crash/bank.js";
import { transferTimeoutMs } from "../crash/crash-scenario.js";
import { createMixedWorld, participantNames, type MixedWorld } from "../crash/mixed-bank.js";
import { clientFor, countTold, runTransfer } from "../crash/transfer.js";
import {
  createProcessCluster,
  describeExit,
  type ProcessCluster,
  type ProcessNode,
} from "../support/process-node.js";
import { seededRandom } from "../unit/log/seeded-random.js";
import { LiveNode } from "./live-node.js";
import { checkSoakTruth, type SoakFound } from "./soak-check.js";
import { saveEvidence } from "./soak-evidence.js";
import { nextSoakSpec, soakBranches, type SoakOutcome } from "./soak-workload.js";

export interface SoakOptions {
  readonly seed: number;
  readonly kills: number;
  readonly clients: number;
  /** Each kill comes a random killMsMin..killMsMax after the node listens. */
  readonly killMsMin: number;
  readonly killMsMax: number;
  /** Accounts per database: fewer means more row contention. */
  readonly accounts: number;
  readonly doomedPercent: number;
  /** Bounds the wait for recovery after the last restart. */
  readonly settleTimeoutMs: number;
  /** Bounds each client's loop, which otherwise ends with the last kill. */
  readonly transfersPerClientMax: number;
  /** The node's log level: `info` logs every branch's phase 2 (the evidence of a violation). */
  readonly logLevel: string;
  /** Kafka transactional ids (default 16): fewer puts more branches in each Kafka transaction. */
  readonly kafkaPoolSize?: number;
}

export interface SoakResult {
  readonly seed: number;
  readonly kills: number;
  readonly transfers: number;
  readonly found: SoakFound | undefined;
  readonly violations: string[];
  readonly settledMs: number | undefined;
  readonly durationMs: number;
  /** Where a failed run's evidence was saved. */
  readonly evidenceDir: string | undefined;
}

/** Violations printed with the figures (all of them are in the evidence directory). */
const violationsShownMax = 40;
/** Failed starts of the node in a row before the run gives up. */
const startAttemptsMax = 3;

export async function runSoak(o: SoakOptions, say: (line: string) => void): Promise<SoakResult> {
  const startedAt = Date.now();
  const world = await createMixedWorld(o.accounts);
  let cluster: ProcessCluster;
  try {
    cluster = await createProcessCluster({
      extraParticipants: world.participants.map((p) =>
        // The Kafka participant's own defaults, as the black-box test that found a duplicate
        // ran it: 16 transactional ids, and open transactions that linger 30 s unless fenced.
        p.name === participantNames.kafka
          ? { ...p, poolSize: o.kafkaPoolSize ?? 16, attemptTimeoutMs: 30_000 }
          : p,
      ),
      logLevel: o.logLevel,
    });
  } catch (err) {
    await world.close(undefined);
    throw err;
  }
  const violations: string[] = [];
  const outcomes: SoakOutcome[] = [];
  let clusterId: string | undefined;
  let evidenceDir: string | undefined;
  try {
    say(`soak seed ${o.seed}: data ${cluster.dataDir}, topic ${world.topic}`);
    const live = new LiveNode();
    const clients = Array.from({ length: o.clients }, (_, c) =>
      runClient(o, world, cluster, live, c, outcomes),
    );
    try {
      await killLoop(o, cluster, live, outcomes, violations, say);
    } finally {
      live.stop();
      await Promise.all(clients);
    }
    const node = await startNode(cluster, violations);
    clusterId = await cluster.clusterId();
    const settled = await settle(node, cluster, clusterId, world, outcomes, o, violations);
    const { violations: found, found: figures } = await checkSoakTruth(
      world,
      outcomes,
      settled?.states,
      clusterId,
    );
    violations.push(...found);
    if (violations.length > 0) {
      evidenceDir = await saveEvidence(o.seed, violations, cluster.logPath, world);
    }
    return {
      seed: o.seed,
      kills: o.kills,
      transfers: outcomes.length,
      found: figures,
      violations,
      settledMs: settled?.ms,
      durationMs: Date.now() - startedAt,
      evidenceDir,
    };
  } catch (err) {
    // A run cut short (the node would not start) keeps its log too.
    violations.push(`the run stopped: ${err instanceof Error ? err.message : String(err)}`);
    const saved = await saveEvidence(o.seed, violations, cluster.logPath, world).catch(
      (e: unknown) => `not saved (${e instanceof Error ? e.message : String(e)})`,
    );
    say(`evidence: ${saved}`);
    throw err;
  } finally {
    clusterId ??= await cluster.clusterId().catch(() => undefined);
    await cluster.kill();
    try {
      await world.close(clusterId);
    } finally {
      await cluster.destroy();
    }
  }
}

/** Starts the node, kills it at a random moment after it listens, `kills` times. */
async function killLoop(
  o: SoakOptions,
  cluster: ProcessCluster,
  live: LiveNode,
  outcomes: readonly SoakOutcome[],
  violations: string[],
  say: (line: string) => void,
): Promise<void> {
  const random = seededRandom(o.seed);
  for (let kill = 1; kill <= o.kills; kill++) {
    const startAt = Date.now();
    const node = await startNode(cluster, violations);
    const listeningMs = Date.now() - startAt;
    live.up(node);
    const afterMs = random.int(o.killMsMin, o.killMsMax);
    await Promise.race([sleep(afterMs), node.exited]);
    const exit = node.exitStatus();
    if (exit !== undefined) {
      violations.push(`kill ${kill}: the node exited on its own (${describeExit(exit)})`);
    }
    live.down();
    node.kill("SIGKILL");
    await node.exited;
    const told = countTold(outcomes);
    say(
      `kill ${kill}/${o.kills}: listening after ${listeningMs} ms, killed ${afterMs} ms later; ` +
        `${outcomes.length} transfers, told committed ${told.committed + told.committing}, ` +
        `aborted ${told.aborted}, unknown ${told.unknown}, not sent ${told["not-sent"]}`,
    );
  }
}

/**
 * Starts the node; a failed start is a violation, retried a few times. The error ends with
 * the node's log, whose last lines say why.
 */
async function startNode(cluster: ProcessCluster, violations: string[]): Promise<ProcessNode> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await cluster.start();
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      violations.push(`the node did not start (attempt ${attempt}): ${why.slice(-2_000)}`);
      if (attempt >= startAttemptsMax) throw err;
    }
  }
}

/** One client's transfers, each against the node that is up, until the run stops. */
async function runClient(
  o: SoakOptions,
  world: MixedWorld,
  cluster: ProcessCluster,
  live: LiveNode,
  c: number,
  outcomes: SoakOutcome[],
): Promise<void> {
  const random = seededRandom(o.seed + 1 + c);
  let client: { url: string; sdk: ReturnType<typeof clientFor> } | undefined;
  for (let k = 0; k < o.transfersPerClientMax; k++) {
    const node = await live.next();
    if (node === undefined) return;
    if (client?.url !== node.url) {
      client = { url: node.url, sdk: clientFor(node.url, cluster.clientToken) };
    }
    const spec = nextSoakSpec(`c${c}-${k}`, c, o.accounts, o.doomedPercent, random);
    outcomes.push(
      await runTransfer(client.sdk, spec, soakBranches(world, spec), transferTimeoutMs),
    );
  }
}

/** Waits (bounded) until every transfer is final and nothing is prepared; a timeout is a violation. */
async function settle(
  node: ProcessNode,
  cluster: ProcessCluster,
  clusterId: string,
  world: MixedWorld,
  outcomes: readonly SoakOutcome[],
  o: SoakOptions,
  violations: string[],
): Promise<{ ms: number; states: ReadonlyMap<string, FinalState> } | undefined> {
  const admin = clientFor(node.url, cluster.adminToken);
  const xids = outcomes.flatMap((x) => (x.xid === undefined ? [] : [x.xid]));
  try {
    return await awaitSettled(admin, clusterId, xids, o.settleTimeoutMs, world.bank.pools);
  } catch (err) {
    violations.push(err instanceof Error ? err.message : String(err));
    return undefined;
  }
}

/** The figures of a run, one line each, ending with the command that replays it. */
export function soakFigures(o: SoakOptions, r: SoakResult): string[] {
  const lines = [
    `soak seed ${r.seed}: ${r.kills} kills, ${o.clients} clients, ${Math.round(r.durationMs / 1000)} s`,
  ];
  if (r.found !== undefined) {
    const { told, committed, absent, kafkaEvents, kafkaAbortedRecords } = r.found;
    lines.push(
      `transfers ${r.transfers}: told committed ${told.committed + told.committing} ` +
        `(committing ${told.committing}), aborted ${told.aborted}, unknown ${told.unknown}, ` +
        `not sent ${told["not-sent"]}`,
      `found committed ${committed}, absent ${absent}; kafka events ${kafkaEvents}, ` +
        `aborted kafka records dropped ${kafkaAbortedRecords}`,
    );
  }
  lines.push(
    `settled ${r.settledMs === undefined ? "NOT within the bound" : `in ${r.settledMs} ms`}`,
    `violations: ${r.violations.length}`,
    ...r.violations.slice(0, violationsShownMax).map((v) => `  ${v}`),
  );
  if (r.violations.length > violationsShownMax) lines.push("  …");
  if (r.evidenceDir !== undefined) lines.push(`evidence: ${r.evidenceDir}`);
  lines.push(
    `replay: node --import tsx test/chaos/soak-main.ts --seed ${r.seed} --kills ${r.kills} ` +
      `--clients ${o.clients} --kill-ms-min ${o.killMsMin} --kill-ms-max ${o.killMsMax}` +
      (o.kafkaPoolSize === undefined ? "" : ` --kafka-pool-size ${o.kafkaPoolSize}`),
  );
  return lines;
}
