/**
 * Who may call what (docs/security.md, "Roles"): bearer tokens held as SHA-256 digests,
 * compared in constant time, replaced without a restart (SIGHUP) with the old ones valid
 * for a grace window, and the one rule that says which role may call which route.
 */
import type { RouteSpec } from "./contract/routes.js";
import { matchesDigest } from "./bearer.js";

/** `admin` is the former name of `operator`, kept so that existing configurations load. */
export type Role = "client" | "operator" | "auditor" | "admin";

export interface ApiToken {
  readonly id: string;
  readonly role: Role;
  /** SHA-256 of the secret: the secret itself is never kept. */
  readonly digest: Buffer;
  readonly participants?: readonly string[];
}

/** Operators (and `admin`) resolve, run recovery, move leadership and drive any transaction. */
export function isOperator(role: Role): boolean {
  return role === "operator" || role === "admin";
}

/**
 * Clients call client routes; auditors read the admin routes and nothing else; operators
 * call everything. Public routes (probes) need no token and never reach this check.
 */
export function mayCall(role: Role, route: Pick<RouteSpec, "auth" | "method">): boolean {
  if (isOperator(role)) return true;
  if (role === "auditor") return route.auth === "admin" && route.method === "GET";
  return route.auth === "client";
}

export class TokenStore {
  private current: readonly ApiToken[];
  /** Tokens a reload removed, valid until `untilMs`. */
  private retiring: { token: ApiToken; untilMs: number }[] = [];

  constructor(
    tokens: readonly ApiToken[],
    private readonly nowMs: () => number,
  ) {
    this.current = tokens;
  }

  /** The token `given` is, or undefined; every candidate is compared (no early exit). */
  authenticate(given: string): ApiToken | undefined {
    if (this.retiring.length > 0) {
      const now = this.nowMs();
      this.retiring = this.retiring.filter((r) => r.untilMs > now);
    }
    let found: ApiToken | undefined;
    for (const t of this.current) {
      if (matchesDigest(given, t.digest) && found === undefined) found = t;
    }
    for (const { token } of this.retiring) {
      if (matchesDigest(given, token.digest) && found === undefined) found = token;
    }
    return found;
  }

  /**
   * Takes a new token set: tokens it no longer holds (by id and secret) stay valid for
   * `graceMs`, so clients can move to their new secret without a failed call.
   */
  replace(tokens: readonly ApiToken[], graceMs: number): void {
    const kept = (t: ApiToken) =>
      tokens.some((n) => n.id === t.id && n.digest.equals(t.digest) && n.role === t.role);
    const untilMs = this.nowMs() + graceMs;
    const dropped = this.current.filter((t) => !kept(t));
    this.retiring = [
      ...this.retiring.filter((r) => !kept(r.token)),
      ...dropped.map((token) => ({ token, untilMs })),
    ];
    this.current = tokens;
  }

  /** Tokens accepted now (current and retiring), for tests and the reload log line. */
  count(): { current: number; retiring: number } {
    return { current: this.current.length, retiring: this.retiring.length };
  }
}
