/**
 * A node must start even while one participant's server is down: it may hold decisions to
 * finish on the others. A participant whose `start` failed for a reason that may pass (its
 * server unreachable) is wrapped here and started again in the background, with backoff.
 * Until then it votes no on every prepare and every other call throws, exactly as an
 * unreachable participant does: phase 2 is retried by the engine, recovery reports it.
 * Once started it fences (Kafka) before anything else, as a new leader would.
 * Anything else that fails `start` — an unsafe server, another cluster's schema, a bad
 * setting — stops the node at once, with the participant's message.
 */
import type { Logger } from "pino";
import { ParticipantError } from "../../participants/common/errors.js";
import type {
  BranchId,
  BranchRef,
  BranchView,
  Health,
  OnePhaseOutcome,
  Participant,
  Phase2Context,
  Phase2Outcome,
  PrepareContext,
  Vote,
} from "../../participants/participant.js";

const retryDelayMsFirst = 500;
const retryDelayMsMax = 30_000;

/** Starts `p`; if its server is unreachable, returns it wrapped to keep trying. */
export async function startParticipant(
  p: Participant,
  clusterId: string,
  logger: Logger,
): Promise<Participant> {
  try {
    await p.start(clusterId);
    return p;
  } catch (e) {
    if (!(e instanceof ParticipantError) || !e.retryable) throw e;
    logger.error(
      { participant: p.name, err: e.message },
      "participant unreachable at start: the node starts without it and keeps trying",
    );
    return new LateStartParticipant(p, clusterId, logger, e.message);
  }
}

class LateStartParticipant implements Participant {
  readonly name: string;
  readonly kind: Participant["kind"];
  readonly commitOnePhase?: (b: BranchRef, c: PrepareContext) => Promise<OnePhaseOutcome>;
  readonly isCommitted?: (branchId: BranchId) => Promise<boolean>;
  private started = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private delayMs = retryDelayMsFirst;

  constructor(
    private readonly p: Participant,
    private readonly clusterId: string,
    private readonly logger: Logger,
    private lastError: string,
  ) {
    this.name = p.name;
    this.kind = p.kind;
    if (p.commitOnePhase) this.commitOnePhase = (b, c) => this.ready().commitOnePhase!(b, c);
    if (p.isCommitted) this.isCommitted = (id) => this.ready().isCommitted!(id);
    this.schedule();
  }

  private schedule(): void {
    this.timer = setTimeout(() => void this.retry(), this.delayMs);
    this.timer.unref();
    this.delayMs = Math.min(this.delayMs * 2, retryDelayMsMax);
  }

  private async retry(): Promise<void> {
    if (this.closed) return;
    try {
      await this.p.start(this.clusterId);
      await this.p.fence?.();
      this.started = true;
      this.logger.info({ participant: this.name }, "participant started late");
    } catch (e) {
      this.lastError = e instanceof Error ? e.message : String(e);
      if (e instanceof ParticipantError && !e.retryable) {
        // Reachable now, but refused (an unsafe server, say): say so loudly, keep refusing.
        this.logger.error({ participant: this.name, err: this.lastError }, "participant refused");
      }
      this.schedule();
    }
  }

  private ready(): Participant {
    if (!this.started) throw new Error(`participant ${this.name} not started: ${this.lastError}`);
    return this.p;
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  prepare(branch: BranchRef, ctx: PrepareContext): Promise<Vote> {
    if (!this.started) {
      return Promise.resolve({
        vote: "no",
        reason: "participant-unavailable",
        detail: `participant ${this.name} not started: ${this.lastError}`,
      });
    }
    return this.p.prepare(branch, ctx);
  }

  commit(branch: BranchRef, ctx: Phase2Context): Promise<Phase2Outcome> {
    return Promise.resolve().then(() => this.ready().commit(branch, ctx));
  }

  rollback(branch: BranchRef, ctx: Phase2Context): Promise<Phase2Outcome> {
    return Promise.resolve().then(() => this.ready().rollback(branch, ctx));
  }

  fence(): Promise<void> {
    // Fenced when it starts; a leader change before that has nothing to fence here.
    return this.started && this.p.fence ? this.p.fence() : Promise.resolve();
  }

  recover(): Promise<BranchId[]> {
    return Promise.resolve().then(() => this.ready().recover());
  }

  inspect(branchId: BranchId, evidence?: string): Promise<BranchView> {
    return Promise.resolve().then(() => this.ready().inspect(branchId, evidence));
  }

  forget(branchIds: readonly BranchId[]): Promise<void> {
    return Promise.resolve().then(() => this.ready().forget(branchIds));
  }

  health(): Promise<Health> {
    if (!this.started) {
      return Promise.resolve({ ok: false, detail: `not started: ${this.lastError}`, warnings: [] });
    }
    return this.p.health();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.p.close();
  }
}
