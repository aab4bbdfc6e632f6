/**
 * Bodies of the probe routes (/livez, /readyz, /healthz), which need no token. Liveness says
 * the process answers; readiness says it can take work (log open, node serving, not
 * draining); the health summary says how well, participant by participant.
 */
import { z } from "zod";
import { responseLimits } from "../../config/limits.js";

export const nodeLifecycles = ["starting", "serving", "draining", "stopped"] as const;
/** `no-space`: etcd's NOSPACE alarm holds appends back (they land once space returns). */
export const logStates = ["open", "closed", "failed", "no-space"] as const;
export const healthStatuses = ["ok", "degraded", "unavailable"] as const;

const { messageCharsMax: detailCharsMax, participantsMax } = responseLimits;

const livezResponse = z
  .object({ status: z.literal("alive") })
  .strict()
  .meta({ description: "The process is alive: its event loop answered." });

const readyzResponse = z
  .object({ status: z.literal("ready") })
  .strict()
  .meta({ description: "The node takes work: log open, serving, not draining." });

const healthzResponse = z
  .object({
    status: z.enum(healthStatuses).meta({
      description:
        "`unavailable`: not ready (see /readyz); `degraded`: ready, but a participant is " +
        "down (its branches vote no, other work goes on); `ok` otherwise.",
    }),
    lifecycle: z.enum(nodeLifecycles),
    log: z
      .object({
        state: z.enum(logStates),
        lastIndex: z.int().min(0),
        detail: z.string().max(detailCharsMax).optional(),
      })
      .strict(),
    participants: z
      .array(
        z
          .object({
            name: z.string().max(64),
            kind: z.enum(["postgres", "redis", "kafka"]),
            ok: z.boolean(),
            detail: z.string().max(detailCharsMax),
          })
          .strict(),
      )
      .max(participantsMax),
  })
  .strict()
  .meta({ description: "The node's health: its log, its lifecycle and each participant." });

export const healthSchemas = { livezResponse, readyzResponse, healthzResponse } as const;
export type HealthzResponse = z.output<typeof healthzResponse>;
