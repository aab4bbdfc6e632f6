/**
 * The participant views of the admin API (`participants[…].view` of a transaction, the
 * prepared branches of `/admin/v1/participants`): participants/inspect.ts's types, as the
 * contract's schemas. Times are ISO strings here; every text is bounded.
 */
import { z } from "zod";
import { inspectListMax, inspectTextCharsMax } from "../../../participants/inspect.js";

const text = z.string().max(inspectTextCharsMax);
const ms = z.int().min(0);
const isoTime = z.iso.datetime();
const holds = z
  .enum(["prepared", "committed", "rolled-back", "absent"])
  .meta({ description: "What the participant holds for the branch, by its own records." });

const postgresView = z
  .object({
    kind: z.literal("postgres"),
    holds,
    prepared: z
      .object({ preparedAt: isoTime, owner: text, database: text, transaction: text })
      .strict()
      .nullable()
      .meta({ description: "The pg_prepared_xacts row, while prepared." }),
    locks: z
      .object({
        held: z.int().min(0),
        heldForMs: ms,
        relations: z.array(text).max(inspectListMax),
        blocked: z
          .array(z.object({ pid: z.int(), user: text, waitingMs: ms, query: text }).strict())
          .max(inspectListMax)
          .meta({ description: "Backends waiting on one of the prepared transaction's locks." }),
      })
      .strict(),
    marker: z
      .object({ present: z.boolean(), at: isoTime.optional(), forged: z.int().min(0) })
      .strict(),
    tombstone: z.object({ present: z.boolean(), at: isoTime.optional() }).strict(),
  })
  .strict();

const redisView = z
  .object({
    kind: z.literal("redis"),
    holds,
    staged: z
      .object({
        preparedAt: isoTime,
        preconditions: z.int().min(0),
        ops: z.int().min(0),
        firstOps: z
          .array(z.object({ op: text, key: text, detail: text }).strict())
          .max(inspectListMax),
      })
      .strict()
      .nullable(),
    locksHeld: z.array(text).max(inspectListMax),
    outcome: z
      .object({
        outcome: text,
        prepared: z.boolean(),
        term: z.int().min(0),
        decidedAt: isoTime,
        at: isoTime,
      })
      .strict()
      .nullable(),
  })
  .strict();

const offset = z.string().regex(/^\d{1,20}$/);
const kafkaView = z
  .object({
    kind: z.literal("kafka"),
    holds,
    marker: z
      .object({
        topic: text,
        partition: z.int().min(0),
        committed: z.boolean(),
        offset: offset.nullable(),
        scannedFrom: offset,
        scannedUntil: offset,
      })
      .strict(),
    transactionalId: z.object({ id: text, state: text.nullable(), note: text }).strict(),
  })
  .strict();

export const participantBranchView = z
  .discriminatedUnion("kind", [postgresView, redisView, kafkaView])
  .meta({ description: "The participant's own view of the branch, read live." });

/** One branch's participant view in a transaction: the view, or why there is none. */
export const participantBranchEntry = z
  .object({
    branch: z.int().min(1),
    participant: z.string().max(64),
    observedAt: isoTime,
    view: participantBranchView.optional(),
    error: z.string().max(4000).optional(),
  })
  .strict();

/** A branch a participant holds prepared, and what the log says of it. */
export const preparedBranchEntry = z
  .object({
    branchId: z.string().max(200),
    explained: z
      .boolean()
      .meta({ description: "The log knows the branch: its transaction and branch number." }),
    xid: z.string().max(64).nullable(),
    state: z.string().max(32).nullable().meta({ description: "Its transaction's state." }),
    preparedAt: isoTime
      .nullable()
      .meta({ description: "From the participant's own view (the first ones only), else null." }),
    ageMs: ms.nullable(),
  })
  .strict();
