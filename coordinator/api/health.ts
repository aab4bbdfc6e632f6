/**
 * The probes. Liveness (/livez) answers from the event loop alone: if it answers within the
 * probe's timeout the loop is responsive, and nothing else (a participant, the log) can fail
 * it — a restart would not bring a participant back. Readiness (/readyz) answers 503 while
 * the node cannot take work: the decision log refuses appends (closed or failed) or holds them
 * back (etcd's NOSPACE alarm: they land once space returns), or the node is not serving (starting, draining, stopped). The summary (/healthz) adds each participant:
 * one that is down makes the node `degraded`, not unready — its branches vote no and every
 * other transaction goes on.
 */
import { messageOf } from "../../participants/common/errors.js";
import { responseLimits } from "../config/limits.js";
import { EtcdNoSpaceError } from "../log/etcd/errors.js";
import { LogClosedError } from "../log/errors.js";
import { ApiError } from "./contract/errors.js";
import type { HealthzResponse, logStates, nodeLifecycles } from "./contract/health.js";
import type { RouteSpec } from "./contract/routes.js";

export type NodeLifecycle = (typeof nodeLifecycles)[number];
type LogState = (typeof logStates)[number];
type ParticipantKind = HealthzResponse["participants"][number]["kind"];

/**
 * Longest a /healthz waits for one participant's health (participants are asked at once,
 * and concurrent /healthz calls share one round of asking): a probe must answer quickly.
 */
export const participantHealthBoundMs = 2_000;
const { messageCharsMax: detailCharsMax } = responseLimits;

/** What the probes read from the node. */
export interface HealthSource {
  lifecycle(): NodeLifecycle;
  /** Why the decision log refuses appends, or undefined while it accepts them. */
  logRefusal(): Error | undefined;
  logLastIndex(): number;
  readonly participants: readonly { readonly name: string; readonly kind: ParticipantKind }[];
  /** Through the driver: bounded, counted, typed errors. */
  participantHealth(name: string, boundMs: number): Promise<{ ok: boolean; detail: string }>;
}

export type Readiness = { ready: true } | { ready: false; reasons: string[] };

export class NodeHealth {
  private asking: Promise<HealthzResponse["participants"]> | undefined;

  constructor(private readonly source: HealthSource) {}

  readiness(): Readiness {
    const reasons: string[] = [];
    const lifecycle = this.source.lifecycle();
    if (lifecycle !== "serving") reasons.push(`the node is ${lifecycle}`);
    const log = this.logState();
    if (log.state !== "open") reasons.push(`the decision log is ${log.state}: ${log.detail}`);
    return reasons.length === 0 ? { ready: true } : { ready: false, reasons };
  }

  async summary(): Promise<HealthzResponse> {
    const participants = await this.participantsHealth();
    const readiness = this.readiness();
    const status = !readiness.ready
      ? "unavailable"
      : participants.every((p) => p.ok)
        ? "ok"
        : "degraded";
    return { status, lifecycle: this.source.lifecycle(), log: this.logState(), participants };
  }

  private logState(): { state: LogState; lastIndex: number; detail?: string } {
    const refusal = this.source.logRefusal();
    const lastIndex = this.source.logLastIndex();
    if (refusal === undefined) return { state: "open", lastIndex };
    const state =
      refusal instanceof LogClosedError
        ? "closed"
        : refusal instanceof EtcdNoSpaceError
          ? "no-space"
          : "failed";
    return { state, lastIndex, detail: refusal.message.slice(0, detailCharsMax) };
  }

  /** One round of asking at a time, shared by concurrent callers: probes never pile up. */
  private participantsHealth(): Promise<HealthzResponse["participants"]> {
    this.asking ??= Promise.all(
      this.source.participants.map(async ({ name, kind }) => {
        try {
          const h = await this.source.participantHealth(name, participantHealthBoundMs);
          return { name, kind, ok: h.ok, detail: h.detail.slice(0, detailCharsMax) };
        } catch (e) {
          return { name, kind, ok: false, detail: messageOf(e).slice(0, detailCharsMax) };
        }
      }),
    ).finally(() => {
      this.asking = undefined;
    });
    return this.asking;
  }
}

/** The route table's probe routes (auth `public`: no token), with their handlers. */
export function healthRoutes(
  routes: readonly RouteSpec[],
  health: NodeHealth,
): { method: RouteSpec["method"]; url: string; handler: () => Promise<unknown> }[] {
  const handlers: Record<string, () => Promise<unknown>> = {
    getLiveness: () => Promise.resolve({ status: "alive" }),
    getReadiness: () => {
      const r = health.readiness();
      if (!r.ready) {
        const reasons = r.reasons;
        return Promise.reject(
          new ApiError("unavailable", `not ready: ${reasons.join("; ")}`, { reasons }),
        );
      }
      return Promise.resolve({ status: "ready" });
    },
    getHealth: () => health.summary(),
  };
  return routes
    .filter((r) => r.auth === "public")
    .map((route) => {
      const handler = handlers[route.id];
      if (!handler) throw new Error(`no handler for the probe route ${route.id}`);
      return { method: route.method, url: route.path, handler };
    });
}
