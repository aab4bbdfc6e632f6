/**
 * VerdictClient: the SDK services use to drive global transactions.
 *
 * - Follows leadership: a `503 not-leader` with a leader hint is re-sent there at once;
 *   a refused connection, a timeout or `503 unavailable` moves to the next base URL.
 * - Every mutating call carries an Idempotency-Key, generated once per logical call and
 *   reused by all its retries, so a retry never adds a second transaction or branch.
 * - Retries are bounded (attempts) with capped exponential backoff.
 * - `commit`, `prepare` and `abort` resolve an outcome in doubt (`503 outcome-unknown`, or
 *   the connection lost mid-call): they ask the transaction's status and, until it shows a
 *   decision, repeat the call with the same key (a retried commit can still finish a live
 *   transaction, or answers the presumed abort of one the log never held), within
 *   `outcomeChecksMax` rounds and `outcomeTimeoutMs`.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type {
  AbortReason,
  BeginRequest,
  BranchView,
  EnlistRequest,
  EnlistResponse,
  TransactionState,
  TransactionView,
} from "./wire.js";
import { OutcomeUnknownError, TransactionAbortedError, VerdictError } from "./errors.js";
import { HttpTransport, type ClientTls } from "./http.js";
import { readEventStream, type StreamEnd } from "./events.js";

export interface RetryPolicy {
  /** HTTP attempts per call, the first included. */
  readonly attemptsMax: number;
  readonly backoffMsInitial: number;
  readonly backoffMsMax: number;
}

export interface VerdictClientOptions {
  /** One node (or a load balancer) … */
  readonly baseUrl?: string;
  /** … or the cluster's nodes: the client moves between them to find the leader. */
  readonly baseUrls?: readonly string[];
  readonly token: string;
  /** Bound of one HTTP attempt. */
  readonly timeoutMs?: number;
  readonly retry?: Partial<RetryPolicy>;
  /** Status checks (each possibly followed by a repeat of the call) to resolve outcome-unknown. */
  readonly outcomeChecksMax?: number;
  /** Bound on the time commit, prepare or abort may spend resolving an outcome in doubt. */
  readonly outcomeTimeoutMs?: number;
  /**
   * Kept-alive connections per node (default 64); calls beyond it wait for a free one,
   * within their `timeoutMs`. `close()` ends them.
   */
  readonly connectionsMax?: number;
  /** For `https:` nodes signed by a private CA, or that require a client certificate. */
  readonly tls?: ClientTls;
}

/** Backoffs add up to 6.6–13 s (half is jitter): longer than a failover at the default
 * 5 s lease, so a call sent to a dying leader is retried on its successor, not given up. */
export const defaultRetryPolicy: RetryPolicy = {
  attemptsMax: 12,
  backoffMsInitial: 50,
  backoffMsMax: 2000,
};
const defaultTimeoutMs = 10_000;
const defaultOutcomeChecksMax = 10;
const defaultOutcomeTimeoutMs = 60_000;
const defaultConnectionsMax = 64;
/** An event stream silent this long is given up: the node's heartbeat comes every 15 s. */
const streamIdleMs = 40_000;
const finishedStates: readonly TransactionState[] = ["committed", "aborted"];
const decidedStates: readonly TransactionState[] = [
  "committing",
  "committed",
  "aborting",
  "aborted",
];

export interface OutcomeOptions {
  /** Bound on the whole wait (default: the client's `outcomeTimeoutMs`). */
  readonly timeoutMs?: number;
  /** `finished` (default): committed or aborted; `decided`: already at committing or aborting. */
  readonly until?: "finished" | "decided";
}

/** Leader hints may add URLs the client was not given; never more than this in all. */
const baseUrlsMax = 16;

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

type Action = "prepare" | "commit" | "abort";
/** States in which each resolving call has its answer. */
const settledStates: Record<Action, readonly TransactionState[]> = {
  prepare: ["prepared", "committing", "committed", "aborting", "aborted"],
  commit: ["committing", "committed", "aborting", "aborted"],
  abort: ["committing", "committed", "aborting", "aborted"],
};

export class VerdictClient {
  private readonly urls: string[];
  private current = 0;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly tls: ClientTls;
  private readonly outcomeChecksMax: number;
  private readonly outcomeTimeoutMs: number;
  private readonly http: HttpTransport;
  private readonly authorization: string;

  constructor(options: VerdictClientOptions) {
    const urls = [...(options.baseUrls ?? []), ...(options.baseUrl ? [options.baseUrl] : [])];
    if (urls.length === 0 || urls.length > baseUrlsMax) {
      throw new RangeError(`VerdictClient needs 1 to ${baseUrlsMax} base URLs`);
    }
    if (options.token === "") throw new RangeError("VerdictClient needs a token");
    this.urls = urls.map(normalizeUrl);
    this.token = options.token;
    this.timeoutMs = positive("timeoutMs", options.timeoutMs ?? defaultTimeoutMs);
    this.retry = { ...defaultRetryPolicy, ...options.retry };
    positive("retry.attemptsMax", this.retry.attemptsMax);
    positive("retry.backoffMsMax", this.retry.backoffMsMax);
    this.outcomeChecksMax = positive(
      "outcomeChecksMax",
      options.outcomeChecksMax ?? defaultOutcomeChecksMax,
    );
    this.outcomeTimeoutMs = positive(
      "outcomeTimeoutMs",
      options.outcomeTimeoutMs ?? defaultOutcomeTimeoutMs,
    );
    this.tls = options.tls ?? {};
    this.http = new HttpTransport(
      positive("connectionsMax", options.connectionsMax ?? defaultConnectionsMax),
      this.tls,
    );
    this.authorization = `Bearer ${this.token}`;
  }

  /** Closes the kept-alive connections (a later call opens new ones). */
  close(): void {
    this.http.close();
  }

  /** The base URL the next call goes to (the leader, as far as the client knows). */
  get baseUrl(): string {
    return this.urls[this.current] ?? "";
  }

  async begin(request: BeginRequest = {}): Promise<TransactionView> {
    const answer = await this.send("POST", "/v1/transactions", request, randomUUID(), undefined);
    return answer.body as TransactionView;
  }

  /**
   * A whole transaction in one request: begin, enlist each branch in order, commit.
   * Resolves like `commit` (state `committed`, or `committing` once decided); throws
   * TransactionAbortedError if it aborted. Retries carry the same Idempotency-Key, which
   * covers every step on the node, so a retry never begins or enlists twice.
   */
  async transact(
    branches: readonly EnlistRequest[],
    request: Omit<BeginRequest, "branches" | "commit"> = {},
  ): Promise<TransactionView> {
    const body: BeginRequest = { ...request, branches: [...branches], commit: true };
    const answer = await this.send("POST", "/v1/transactions", body, randomUUID(), undefined);
    const view = answer.body as TransactionView;
    return settle(view.xid, "commit", view);
  }

  async enlist(xid: string, branch: EnlistRequest): Promise<EnlistResponse> {
    const answer = await this.send("POST", `${txPath(xid)}/branches`, branch, randomUUID(), xid);
    return answer.body as EnlistResponse;
  }

  async reportPrepared(xid: string, branch: number): Promise<BranchView> {
    const path = `${txPath(xid)}/branches/${branch}/prepared`;
    const answer = await this.send("POST", path, {}, randomUUID(), xid);
    return answer.body as BranchView;
  }

  /** Phase 1 only: resolves with state `prepared` when every branch voted yes. */
  prepare(xid: string): Promise<TransactionView> {
    return this.resolving(xid, "prepare");
  }

  /**
   * Resolves with state `committed`, or `committing` (decided; phase 2 still running).
   * Throws TransactionAbortedError if the transaction aborted.
   */
  commit(xid: string): Promise<TransactionView> {
    return this.resolving(xid, "commit");
  }

  /** Resolves with state `aborted` or `aborting`; throws `transaction-committed` if too late. */
  abort(xid: string): Promise<TransactionView> {
    return this.resolving(xid, "abort");
  }

  async status(xid: string): Promise<TransactionView> {
    const answer = await this.send("GET", txPath(xid), undefined, undefined, xid);
    return answer.body as TransactionView;
  }

  /**
   * Waits for the transaction's outcome: resolves with its view once it is `committed` or
   * `aborted` (with `until: "decided"`, already at `committing` or `aborting`). Watches the
   * node's event stream (`GET …/events`); when the stream is refused (429, a node that cannot
   * serve it) or fails, polls the status instead. A stream that ends without the outcome (the
   * leader changed) is opened again, at most `retry.attemptsMax` times. Throws the API's error
   * for an unknown xid or another principal's transaction, and OutcomeUnknownError (with the
   * last state seen) when `timeoutMs` (default `outcomeTimeoutMs`) passes first.
   */
  async outcome(xid: string, options: OutcomeOptions = {}): Promise<TransactionView> {
    const deadlineMs =
      Date.now() + positive("timeoutMs", options.timeoutMs ?? this.outcomeTimeoutMs);
    const wanted = options.until === "decided" ? decidedStates : finishedStates;
    const seen: { view?: TransactionView } = {};
    const watched = await this.watch(xid, wanted, deadlineMs, seen);
    if (watched !== undefined) return watched;
    return this.poll(xid, wanted, deadlineMs, seen);
  }

  /** The outcome from the event stream, or undefined when the stream cannot tell it. */
  private async watch(
    xid: string,
    wanted: readonly TransactionState[],
    deadlineMs: number,
    seen: { view?: TransactionView },
  ): Promise<TransactionView | undefined> {
    for (let attempt = 1; attempt <= this.retry.attemptsMax; attempt++) {
      const remainingMs = deadlineMs - Date.now();
      if (remainingMs <= 0) return undefined;
      const url = `${this.baseUrl}${txPath(xid)}/events`;
      let found: TransactionView | undefined;
      let end: StreamEnd;
      try {
        end = await readEventStream({
          url,
          headers: { authorization: this.authorization },
          tls: this.tls,
          timeoutMs: remainingMs,
          idleMs: streamIdleMs,
          onEvent: (e) => {
            if (e.event !== "state") return false;
            const view = parseView(e.data);
            if (view === undefined) return false;
            seen.view = view;
            if (wanted.includes(view.state)) found = view;
            return found !== undefined;
          },
        });
      } catch {
        return undefined; // No answer: polling moves across the base URLs.
      }
      if (found !== undefined) return found;
      if (end.kind !== "refused") continue;
      const error = errorOf(end, "GET", url, xid);
      const hinted = error.code === "not-leader" ? leaderHint(error) : undefined;
      if (hinted !== undefined && this.follow(hinted)) continue;
      // Only a final refusal is the caller's answer; a busy or standby node is polled instead.
      if (error.retryable || error.code === "bad-response") return undefined;
      throw error;
    }
    return undefined;
  }

  /** The outcome by reading the status until it shows, within `deadlineMs`. */
  private async poll(
    xid: string,
    wanted: readonly TransactionState[],
    deadlineMs: number,
    seen: { view?: TransactionView },
  ): Promise<TransactionView> {
    let lastError: unknown;
    for (let check = 1; Date.now() < deadlineMs; check++) {
      try {
        const view = await this.readView(xid, deadlineMs);
        seen.view = view;
        if (wanted.includes(view.state)) return view;
      } catch (err) {
        if (!(err instanceof VerdictError) || !err.retryable) throw err;
        lastError = err;
      }
      const waitMs = Math.min(this.backoffMs(check), deadlineMs - Date.now());
      if (waitMs > 0) await sleep(waitMs);
    }
    throw new OutcomeUnknownError(xid, seen.view?.state, lastError);
  }

  /**
   * Sends a decision call. If its outcome is in doubt (outcome-unknown, or no answer at all),
   * asks the status and repeats the call with the same Idempotency-Key until one of them
   * tells the outcome: a repeat returns the first call's answer, finishes what it began, or —
   * for a transaction the leader's log does not hold — answers the presumed abort. A 404 from
   * the status does not end the search: only the repeated call can tell an unknown xid
   * (presumed abort) from a forgotten one. Bounded by `outcomeChecksMax` and `outcomeTimeoutMs`.
   */
  private async resolving(xid: string, action: Action): Promise<TransactionView> {
    const key = randomUUID();
    const deadlineMs = Date.now() + this.outcomeTimeoutMs;
    let lastState: TransactionState | undefined;
    let lastError: unknown;
    for (let check = 0; check <= this.outcomeChecksMax; check++) {
      if (check > 0) {
        if (Date.now() >= deadlineMs) break;
        await sleep(this.backoffMs(check));
      }
      try {
        const path = `${txPath(xid)}/${action}`;
        const answer = await this.send("POST", path, {}, key, xid, false, deadlineMs);
        return settle(xid, action, answer.body as TransactionView);
      } catch (err) {
        if (!inDoubt(err, check > 0)) throw err;
        lastError = err;
      }
      try {
        const view = await this.readView(xid, deadlineMs);
        if (settledStates[action].includes(view.state)) return settle(xid, action, view);
        lastState = view.state;
      } catch (err) {
        if (!inDoubt(err, true)) throw err;
        lastError = err;
      }
    }
    throw new OutcomeUnknownError(xid, lastState, lastError);
  }

  /** The transaction's view (a status read, retried like any read until `deadlineMs`). */
  private async readView(xid: string, deadlineMs: number): Promise<TransactionView> {
    const answer = await this.send("GET", txPath(xid), undefined, undefined, xid, true, deadlineMs);
    return answer.body as TransactionView;
  }

  /**
   * One logical call: bounded attempts across the base URLs. Answers a 2xx, or throws the
   * typed error of a final answer, or the last error once the attempts are spent.
   * `retryUnknown`: whether outcome-unknown is simply retried (with the same key).
   * `deadlineMs` (epoch ms): no new attempt starts after it.
   */
  private async send(
    method: "GET" | "POST",
    path: string,
    body: unknown,
    idempotencyKey: string | undefined,
    xid: string | undefined,
    retryUnknown = true,
    deadlineMs = Number.POSITIVE_INFINITY,
  ): Promise<Answer> {
    let lastError: VerdictError | undefined;
    let waitMs = 0;
    for (let attempt = 1; attempt <= this.retry.attemptsMax; attempt++) {
      if (attempt > 1 && Date.now() + waitMs >= deadlineMs) break;
      if (waitMs > 0) await sleep(waitMs);
      waitMs = this.backoffMs(attempt);
      const url = this.baseUrl + path;
      let answer: Answer;
      try {
        answer = await this.attempt(method, url, body, idempotencyKey);
      } catch (err) {
        lastError = new VerdictError({
          code: "connection-failed",
          message: `${method} ${url}: ${err instanceof Error ? err.message : String(err)}`,
          status: 0,
          retryable: true,
          xid,
          cause: err,
        });
        this.next();
        continue;
      }
      if (answer.status >= 200 && answer.status < 300) return answer;
      const error = errorOf(answer, method, url, xid);
      lastError = error;
      if (error.code === "not-leader") {
        const hinted = leaderHint(error);
        if (hinted !== undefined && this.follow(hinted)) waitMs = 0;
        else this.next();
        continue;
      }
      if (error.code === "outcome-unknown" && !retryUnknown) throw error;
      if (!error.retryable) throw error;
      if (error.code === "unavailable" || error.code === "bad-response") this.next();
    }
    throw lastError ?? new Error("unreachable: attemptsMax >= 1");
  }

  private attempt(
    method: string,
    url: string,
    body: unknown,
    idempotencyKey: string | undefined,
  ): Promise<Answer> {
    const headers: Record<string, string> = {
      authorization: this.authorization,
      accept: "application/json",
    };
    if (idempotencyKey !== undefined) headers["idempotency-key"] = idempotencyKey;
    if (body !== undefined) headers["content-type"] = "application/json";
    const text = body === undefined ? undefined : JSON.stringify(body);
    return this.http.request(method, url, headers, text, this.timeoutMs);
  }

  private backoffMs(attempt: number): number {
    const capMs = Math.min(
      this.retry.backoffMsMax,
      this.retry.backoffMsInitial * 2 ** Math.min(attempt - 1, 30),
    );
    // Half fixed, half jitter: clients retrying together spread out.
    return capMs / 2 + Math.random() * (capMs / 2);
  }

  private next(): void {
    this.current = (this.current + 1) % this.urls.length;
  }

  /** Points the client at a hinted leader; false if the hint is the node just asked. */
  private follow(hint: string): boolean {
    const url = normalizeUrl(hint);
    let index = this.urls.indexOf(url);
    if (index === this.current) return false;
    if (index === -1) {
      if (this.urls.length >= baseUrlsMax) return false;
      index = this.urls.push(url) - 1;
    }
    this.current = index;
    return true;
  }
}

/**
 * Whether a failed decision call (or status read) leaves the outcome open, so that asking
 * again can help. The first call is in doubt only when it may have reached the leader
 * without its answer reaching us; once in doubt, a retryable error or a 404 from a node that
 * does not hold the transaction (yet, or any more) leaves it open too.
 */
function inDoubt(err: unknown, alreadyInDoubt: boolean): boolean {
  if (!(err instanceof VerdictError)) return false;
  if (err.code === "outcome-unknown" || err.code === "connection-failed") return true;
  if (err.code === "bad-response") return err.status === 0 || err.status >= 500;
  return alreadyInDoubt && (err.retryable || err.code === "transaction-not-found");
}

function settle(xid: string, action: Action, view: TransactionView): TransactionView {
  const aborted = view.state === "aborted" || view.state === "aborting";
  const committed = view.state === "committed" || view.state === "committing";
  if (action !== "abort" && aborted) {
    throw new TransactionAbortedError(
      xid,
      view.reason,
      `transaction ${xid} aborted${view.reason ? `: ${view.reason.message}` : ""}`,
    );
  }
  if (action === "abort" && committed) {
    throw new VerdictError({
      code: "transaction-committed",
      message: `transaction ${xid} is already committed`,
      status: 409,
      retryable: false,
      xid,
    });
  }
  return view;
}

/** The typed error of a non-2xx answer. */
function errorOf(
  answer: Answer,
  method: string,
  url: string,
  xid: string | undefined,
): VerdictError {
  const body = isRecord(answer.body) ? answer.body : {};
  const error = isRecord(body.error) ? body.error : undefined;
  if (error === undefined || typeof error.code !== "string") {
    return new VerdictError({
      code: "bad-response",
      message: `${method} ${url}: HTTP ${answer.status} without an API error body`,
      status: answer.status,
      retryable: answer.status >= 500,
      xid,
    });
  }
  const message = typeof error.message === "string" ? error.message : error.code;
  const details = isRecord(error.details) ? error.details : undefined;
  if (error.code === "transaction-aborted") {
    const reason = isAbortReason(body.reason) ? body.reason : undefined;
    const bodyXid = typeof body.xid === "string" ? body.xid : xid;
    return new TransactionAbortedError(bodyXid ?? "", reason, message, answer.status);
  }
  return new VerdictError({
    code: error.code as VerdictError["code"],
    message,
    status: answer.status,
    retryable: error.retryable === true,
    xid,
    details,
  });
}

/** A `state` event's data: a transaction view, or undefined when it is not one. */
function parseView(data: string): TransactionView | undefined {
  try {
    const view = JSON.parse(data) as TransactionView | null;
    return typeof view?.state === "string" ? view : undefined;
  } catch {
    return undefined;
  }
}

function leaderHint(error: VerdictError): string | undefined {
  const url = error.details?.leaderUrl;
  return typeof url === "string" && /^https?:\/\//.test(url) ? url : undefined;
}

function isAbortReason(value: unknown): value is AbortReason {
  return isRecord(value) && typeof value.code === "string" && typeof value.message === "string";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function txPath(xid: string): string {
  return `/v1/transactions/${encodeURIComponent(xid)}`;
}

function normalizeUrl(url: string): string {
  return url.replace(/\/+$/, "");
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be > 0`);
  return value;
}
