/**
 * Prometheus metrics, one registry per node (tests run several nodes in one process), each
 * also serving the process's own metrics (heap, RSS, event-loop lag, GC, CPU), collected once
 * per process.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export interface Metrics {
  readonly registry: Registry;
  readonly decisions: Counter<"decision">;
  readonly heuristics: Counter<"outcome">;
  readonly recoveryBranches: Counter<"action">;
  readonly recoveryErrors: Counter<"participant">;
  readonly routeSeconds: Histogram<"route" | "status">;
  readonly participantSeconds: Histogram<"participant" | "op">;
  readonly appendSeconds: Histogram<"record">;
  readonly fsyncSeconds: Histogram;
  readonly entriesPerFsync: Histogram;
  readonly kafkaBranchesPerTransaction: Histogram<"participant">;
  readonly etcdRequests: Counter<"method">;
  readonly takeoverStepSeconds: Gauge<"step">;
  readonly inFlight: Gauge;
  readonly inDoubt: Gauge;
  readonly inDoubtOldestSeconds: Gauge;
  readonly phase2Retries: Counter<"participant" | "op">;
  readonly leadershipChanges: Counter<"change">;
  readonly leader: Gauge;
  readonly logNoSpace: Gauge;
  readonly participantUp: Gauge<"participant">;
  /** Renderings of /metrics: at most one per `metrics.cacheMs` however many scrape. */
  readonly renders: Counter;
}

let processRegistry: Registry | undefined;

/**
 * prom-client's default collectors (`process_resident_memory_bytes`,
 * `nodejs_heap_size_used_bytes`, `nodejs_eventloop_lag_seconds`, …): read when scraped,
 * apart from GC durations (an observer per collection, not per request) and the event-loop
 * delay histogram (sampled natively). Registered once per process: several nodes in one
 * process share them, as they share the process.
 */
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export function createMetrics(): Metrics {
  const own = new Registry();
  const latency = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  const metrics: Metrics = {
    registry: own,
    decisions: new Counter({
      name: "verdict_decisions_total",
      help: "Transactions decided, by decision (commit, abort), counted when durable.",
      labelNames: ["decision"],
      registers: [own],
    }),
    heuristics: new Counter({
      name: "verdict_heuristic_outcomes_total",
      help: "Branches found decided by someone else (heuristic-commit, heuristic-rollback).",
      labelNames: ["outcome"],
      registers: [own],
    }),
    recoveryBranches: new Counter({
      name: "verdict_recovery_branches_total",
      help: "Prepared branches recovery scans found, by what they did (committed, rolled-back, left).",
      labelNames: ["action"],
      registers: [own],
    }),
    recoveryErrors: new Counter({
      name: "verdict_recovery_errors_total",
      help: "Participants a recovery scan could not list, by participant.",
      labelNames: ["participant"],
      registers: [own],
    }),
    routeSeconds: new Histogram({
      name: "verdict_route_seconds",
      help:
        "Latency of every answered HTTP request, errors included, by route id (the path for " +
        "routes outside the table, `unmatched` for none) and status code.",
      labelNames: ["route", "status"],
      buckets: latency,
      registers: [own],
    }),
    participantSeconds: new Histogram({
      name: "verdict_participant_call_seconds",
      help: "Latency of participant calls by participant and operation.",
      labelNames: ["participant", "op"],
      buckets: latency,
      registers: [own],
    }),
    appendSeconds: new Histogram({
      name: "verdict_log_append_seconds",
      help: "Time from proposing a log record to it being durable, by record type.",
      labelNames: ["record"],
      buckets: latency,
      registers: [own],
    }),
    fsyncSeconds: new Histogram({
      name: "verdict_log_fsync_seconds",
      help: "Latency of one log fdatasync.",
      buckets: latency,
      registers: [own],
    }),
    entriesPerFsync: new Histogram({
      name: "verdict_log_entries_per_fsync",
      help: "Entries made durable by one fdatasync (group commit).",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers: [own],
    }),
    kafkaBranchesPerTransaction: new Histogram({
      name: "verdict_kafka_branches_per_transaction",
      help: "Branches one Kafka transaction committed (batched on one transactional id).",
      labelNames: ["participant"],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers: [own],
    }),
    etcdRequests: new Counter({
      name: "verdict_etcd_requests_total",
      help:
        "etcd requests this node sent (unary calls and streams opened; a lease renewal opens " +
        "one), by gRPC service and method (KV.txn, KV.range, Lease.leaseKeepAlive, …).",
      labelNames: ["method"],
      registers: [own],
    }),
    takeoverStepSeconds: new Gauge({
      name: "verdict_cluster_takeover_step_timestamp_seconds",
      help:
        "When (Unix time) this node's last takeover reached each step: seenFree (nobody " +
        "leads), won (the campaign), opened (the log), serving (replayed, the term's work built).",
      labelNames: ["step"],
      registers: [own],
    }),
    inFlight: new Gauge({
      name: "verdict_transactions_in_flight",
      help:
        "Transactions counted against inFlightTransactionsMax: begun and not yet finished " +
        "(a decided one counts until every branch is acknowledged).",
      registers: [own],
    }),
    inDoubt: new Gauge({
      name: "verdict_transactions_in_doubt",
      help:
        "Transactions in doubt: prepared and waiting for the client's commit, or decided " +
        "with branches not yet acknowledged (committing, aborting).",
      registers: [own],
    }),
    inDoubtOldestSeconds: new Gauge({
      name: "verdict_in_doubt_oldest_age_seconds",
      help: "Age of the oldest transaction in doubt, from its begin (0 when none is in doubt).",
      registers: [own],
    }),
    phase2Retries: new Counter({
      name: "verdict_phase2_retries_total",
      help: "Phase-2 calls (commit, rollback) that failed and will be retried, by participant.",
      labelNames: ["participant", "op"],
      registers: [own],
    }),
    leadershipChanges: new Counter({
      name: "verdict_leadership_changes_total",
      help: "Times this node became leader (gained) or stopped leading (lost).",
      labelNames: ["change"],
      registers: [own],
    }),
    leader: new Gauge({
      name: "verdict_leader",
      help: "1 while this node leads (its table caught up or catching up), else 0.",
      registers: [own],
    }),
    logNoSpace: new Gauge({
      name: "verdict_log_nospace",
      help:
        "1 while etcd's NOSPACE alarm holds this leader's appends back (begin is refused, " +
        "the node is not ready; docs/etcd.md, NOSPACE), else 0.",
      registers: [own],
    }),
    participantUp: new Gauge({
      name: "verdict_participant_up",
      help: "1 if the participant's last health check (/healthz, the participants view) passed, else 0.",
      labelNames: ["participant"],
      registers: [own],
    }),
    renders: new Counter({
      name: "verdict_metrics_renders_total",
      help: "Renderings of /metrics (one serves every scrape within metrics.cacheMs).",
      registers: [own],
    }),
  };
  // Merged once every metric above is in `own`: the merge copies the registrations it finds.
  return { ...metrics, registry: Registry.merge([own, processMetrics()]) };
}
