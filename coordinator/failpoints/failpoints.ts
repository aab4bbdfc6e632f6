/**
 * Named failpoints at every protocol step, for crash tests. They are enabled only by
 * configuration (the VERDICT_FAILPOINTS environment variable of the process, never a client
 * request): `name=action[,name=action…]` with action `crash` (SIGKILL-like exit, nothing
 * flushed), `hang` (never returns), `error` (throws), optionally `@N` to fire on the N-th hit.
 */
export const failpointNames = [
  "before-append",
  "after-append",
  "before-decision-append",
  /** Before an `acks` record is appended: its clients may already have been told the outcome. */
  "before-acks-append",
  "after-preparing-durable",
  "after-decision-durable",
  "before-prepare",
  "after-prepare",
  "before-commit",
  "after-commit",
  "before-rollback",
  "after-rollback",
  "before-one-phase-commit",
  "after-one-phase-commit",
  /** Recovery listed the participants' prepared branches and has not acted on them yet. */
  "recovery-after-scan",
  /** A `recover` record is durable; the branches it names are not settled yet. */
  "after-recovery-durable",
] as const;
export type FailpointName = (typeof failpointNames)[number];
type Action = "crash" | "hang" | "error";

export class FailpointError extends Error {
  override readonly name = "FailpointError";
}

export interface Failpoints {
  hit(name: FailpointName): Promise<void>;
}

export const noFailpoints: Failpoints = { hit: () => Promise.resolve() };

export function parseFailpoints(spec: string | undefined): Failpoints {
  if (!spec) return noFailpoints;
  const armed = new Map<string, { action: Action; at: number; hits: number }>();
  for (const part of spec.split(",").filter(Boolean)) {
    const m = /^([a-z0-9-]+)=(crash|hang|error)(?:@(\d+))?$/.exec(part.trim());
    if (!m || !(failpointNames as readonly string[]).includes(m[1] ?? "")) {
      throw new Error(`invalid failpoint '${part}' (known: ${failpointNames.join(", ")})`);
    }
    armed.set(m[1] ?? "", { action: m[2] as Action, at: Number(m[3] ?? 1), hits: 0 });
  }
  return {
    hit(name) {
      const fp = armed.get(name);
      if (!fp || ++fp.hits !== fp.at) return Promise.resolve();
      switch (fp.action) {
        case "crash":
          process.stderr.write(`failpoint ${name}: crash\n`);
          process.kill(process.pid, "SIGKILL");
          return new Promise<void>(() => undefined);
        case "hang":
          return new Promise<void>(() => undefined);
        case "error":
          return Promise.reject(new FailpointError(`failpoint ${name}`));
      }
    },
  };
}
