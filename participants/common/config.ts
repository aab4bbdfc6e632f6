/**
 * What every participant's configuration does alike: a name, validated the same way, and
 * one parse that names the participant in its error (even when the name itself is invalid).
 */
import { z } from "zod";
import type { ParticipantKind } from "../participant.js";
import type { ParticipantErrorIds } from "./errors.js";

/** Participant name used in the API (`"pg-orders"`), logs and errors. */
export const participantNameSchema = z.string().min(1).max(64);

/**
 * Parses `input` with `schema`; on failure throws a `ConfigError` whose message starts with
 * the kind and name of the participant (`redis participant redis-main: …`).
 */
export function parseParticipantConfig<S extends z.ZodType>(
  kind: ParticipantKind,
  schema: S,
  input: unknown,
  ConfigError: new (message: string, ids: ParticipantErrorIds) => Error,
): z.output<S> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const name = nameOf(input);
    throw new ConfigError(`${kind} participant ${name}: ${z.prettifyError(parsed.error)}`, {
      participant: name,
    });
  }
  return parsed.data;
}

/** The `name` of a raw configuration, for messages, whether or not it is valid. */
function nameOf(input: unknown): string {
  return typeof input === "object" &&
    input !== null &&
    typeof (input as { name?: unknown }).name === "string"
    ? (input as { name: string }).name
    : "(unnamed)";
}
