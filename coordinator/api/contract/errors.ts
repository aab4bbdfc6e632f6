/**
 * The API's one error shape and its catalogue of stable codes. HTTP statuses are
 * decided here and nowhere else. Every error body is
 * `{ "error": { "code", "message", "retryable", "details"? } }`; `retryable` says
 * whether repeating the same request (with the same Idempotency-Key) can succeed,
 * so that clients in any language need not copy this table.
 */
import { z } from "zod";

interface CatalogueEntry {
  readonly status: number;
  readonly retryable: boolean;
  /** When the code is returned: goes into the OpenAPI document and the docs. */
  readonly when: string;
}

export const errorCatalogue = {
  "bad-request": {
    status: 400,
    retryable: false,
    when: "The body is not valid JSON, or the request is malformed in a way no schema describes.",
  },
  "json-too-deep": {
    status: 400,
    retryable: false,
    when:
      "The JSON body nests arrays and objects deeper than `jsonDepthMax` (checked before it is " +
      "parsed). `details.max` gives the bound. Nothing was changed.",
  },
  "validation-failed": {
    status: 400,
    retryable: false,
    when:
      "A path parameter, query parameter, header or body does not match its schema: wrong type, " +
      "a path parameter over the router's `maxParamLength` or not valid percent-encoding, " +
      "unknown field, a string or list over its bound, two branch kinds at once. " +
      "`details.issues` lists the problems (path and message). Nothing was changed.",
  },
  "unknown-participant": {
    status: 400,
    retryable: false,
    when: "The branch names a participant this cluster is not configured with. `details.participant`.",
  },
  "limit-exceeded": {
    status: 400,
    retryable: false,
    when:
      "The request is valid alone but would take the transaction over a limit: branches per " +
      "transaction, or statements/operations/messages per branch once merged with earlier " +
      "enlists. `details.limit` names the limit, `details.max` its value. Nothing was changed.",
  },
  unauthorized: {
    status: 401,
    retryable: false,
    when: "No bearer token, or a token this cluster does not know.",
  },
  forbidden: {
    status: 403,
    retryable: false,
    when:
      "The token may not do this: a client token on an admin route, or a transaction begun by " +
      "another principal (only that principal or an admin may drive it).",
  },
  "participant-forbidden": {
    status: 403,
    retryable: false,
    when: "The client token is scoped to participants that do not include this one.",
  },
  "not-found": {
    status: 404,
    retryable: false,
    when: "No such route.",
  },
  "method-not-allowed": {
    status: 405,
    retryable: false,
    when:
      "The path exists but not with this method; the `Allow` header lists its methods. " +
      "Nothing was read or changed.",
  },
  "transaction-not-found": {
    status: 404,
    retryable: false,
    when: "No transaction with this xid: never begun here, or forgotten after its retention time.",
  },
  "branch-not-found": {
    status: 404,
    retryable: false,
    when: "The transaction has no branch with this number.",
  },
  "idempotency-key-reused": {
    status: 409,
    retryable: false,
    when:
      "The Idempotency-Key was already used by this principal for a different request (another " +
      "route, transaction or body). A key is held only by a call that changed something, for " +
      "`idempotencyKeyAgeMsMax` at most.",
  },
  "transaction-aborted": {
    status: 409,
    retryable: false,
    when:
      "The transaction is aborted (or aborting): a no vote, a prepare error, its deadline, an " +
      "abort call. The body also carries `xid`, `state` and `reason` at its top level.",
  },
  "transaction-committed": {
    status: 409,
    retryable: false,
    when: "Abort was asked of a transaction whose commit decision is already durable.",
  },
  "invalid-state": {
    status: 409,
    retryable: false,
    when:
      "The call does not fit the transaction's or branch's state: enlisting after prepare began, " +
      "reporting a coordinator-executed branch prepared, preparing a transaction whose commit " +
      "is decided, resolving a transaction not in doubt. " +
      "`details.state` is the current state.",
  },
  "branch-not-prepared": {
    status: 409,
    retryable: false,
    when:
      "A service-prepared branch was reported prepared, but its gid is not in " +
      "`pg_prepared_xacts` of that database.",
  },
  "invalid-utf8": {
    status: 400,
    retryable: false,
    when:
      "The body is not valid UTF-8 (JSON must be): refused rather than repaired, so no text " +
      "is stored other than as sent. Nothing was changed.",
  },
  "headers-too-large": {
    status: 431,
    retryable: false,
    when: "The request's header fields are over the HTTP server's limit (16 KiB); nothing was read.",
  },
  "unsupported-media-type": {
    status: 415,
    retryable: false,
    when: "A body was sent with a Content-Type other than application/json.",
  },
  "request-timeout": {
    status: 408,
    retryable: true,
    when:
      "The request's header fields or body did not arrive within `http.headersTimeoutMs` or " +
      "`http.requestTimeoutMs`; the connection is closed. Sent on the socket, before any route.",
  },
  "body-too-large": {
    status: 413,
    retryable: false,
    when: "The request body is over `bodyBytesMax`. Nothing was read further or changed.",
  },
  "payload-too-large": {
    status: 413,
    retryable: false,
    when: "The transaction's branch work would exceed `payloadBytesPerTransactionMax`.",
  },
  "too-many-transactions": {
    status: 429,
    retryable: true,
    when:
      "`inFlightTransactionsMax` transactions are undecided on the node, or " +
      "`inFlightTransactionsPerPrincipalMax` of this principal's are (`details.limit` names " +
      "which); begin again after the `Retry-After` header's seconds.",
  },
  "rate-limited": {
    status: 429,
    retryable: true,
    when:
      "This principal sent more than `requestBurstPerPrincipal` requests at once, or more than " +
      "`requestsPerSecondPerPrincipal` on average; nothing was done. Repeat after the " +
      "`Retry-After` header's seconds (also `details.retryAfterS`).",
  },
  "too-many-streams": {
    status: 429,
    retryable: true,
    when:
      "This token holds `eventStreamsPerPrincipalMax` event streams already, or the node holds " +
      "`eventStreamsMax` transaction streams (or 32 admin streams): `details.limit` names which. " +
      "Nothing was opened; close a stream, or repeat after the `Retry-After` header's seconds.",
  },
  internal: {
    status: 500,
    retryable: false,
    when: "A bug: an invariant broke. The node logs it with the request id.",
  },
  "not-leader": {
    status: 503,
    retryable: true,
    when:
      "This node is not the leader. `details.leaderUrl` (and `details.leaderId`) name the " +
      "leader when known: send the same request there.",
  },
  "outcome-unknown": {
    status: 503,
    retryable: true,
    when:
      "The node lost leadership (or its log did not take the record) while handling the call, " +
      "an operator's resolution included, and cannot tell what happened. Ask " +
      "`GET /v1/transactions/{xid}` (or repeat the call with the same Idempotency-Key).",
  },
  "log-full": {
    status: 503,
    retryable: true,
    when:
      "The decision log cannot take new work: etcd's NOSPACE alarm is raised (its backend " +
      "reached its quota; docs/etcd.md, NOSPACE). Begin (with or without branches) is refused " +
      "and nothing was changed; transactions already under way are held and finish once an " +
      "operator frees space. Begin again later.",
  },
  unavailable: {
    status: 503,
    retryable: true,
    when:
      "No quorum, shutting down, a participant the call needs cannot be reached, or too many " +
      "calls already wait on the transaction (`callsWaitingPerTransactionMax`) or for an " +
      "operator's record (`operatorCallsWaitingMax`); `details.limit` then names the limit.",
  },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof errorCatalogue;
export const errorCodes = Object.keys(errorCatalogue) as ErrorCode[];

export const errorBodySchema = z
  .object({
    error: z
      .object({
        code: z.enum(errorCodes as [ErrorCode, ...ErrorCode[]]),
        message: z.string().max(4000),
        retryable: z.boolean(),
        details: z.record(z.string(), z.unknown()).optional(),
      })
      .strict(),
  })
  .meta({ description: "The one error shape of the API." });

export type ErrorBody = z.output<typeof errorBodySchema>;
export type ErrorDetails = Record<string, unknown>;

/** `details` of `not-leader`: where to send the request instead. */
export interface NotLeaderDetails {
  readonly leaderId?: string;
  readonly leaderUrl?: string;
}

export function errorBody(code: ErrorCode, message: string, details?: ErrorDetails): ErrorBody {
  const entry = errorCatalogue[code];
  return {
    error: { code, message, retryable: entry.retryable, ...(details ? { details } : {}) },
  };
}

/** An expected API failure; the route layer turns it into its status and body. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly details: ErrorDetails | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    details?: ErrorDetails,
    options?: { readonly cause?: unknown },
  ) {
    super(message, options);
    this.name = "ApiError";
    this.code = code;
    this.status = errorCatalogue[code].status;
    this.retryable = errorCatalogue[code].retryable;
    this.details = details;
  }

  toBody(): ErrorBody {
    return errorBody(this.code, this.message, this.details);
  }
}

const issuesReportedMax = 20;

export interface ValidationIssue {
  readonly path: string;
  readonly message: string;
}

/**
 * Readable issues of a failed parse. A union (the branch body) reports the issues of
 * the one option the input came closest to — the one with fewest mismatches at its
 * own level — or, when the input fits no option better than another, the union's
 * own message (each union in the schemas says what it accepts).
 */
export function validationIssues(error: z.core.$ZodError, where: string): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  collectIssues(error.issues, [where], out);
  return out.slice(0, issuesReportedMax);
}

function collectIssues(
  issues: readonly z.core.$ZodIssue[],
  prefix: readonly PropertyKey[],
  out: ValidationIssue[],
): void {
  for (const issue of issues) {
    if (out.length >= issuesReportedMax) return;
    const path = [...prefix, ...issue.path];
    if (issue.code !== "invalid_union" || issue.errors.length === 0) {
      out.push({ path: formatPath(path), message: issue.message });
      continue;
    }
    const shallow = issue.errors.map((option) => option.filter((i) => i.path.length <= 1).length);
    const best = Math.min(...shallow);
    const closest = shallow.filter((n) => n === best);
    const chosen = issue.errors[shallow.indexOf(best)];
    if (closest.length === 1 && chosen) {
      collectIssues(chosen, path, out);
    } else {
      out.push({ path: formatPath(path), message: issue.message });
    }
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`))
    .join("");
}

/** The `validation-failed` error for a parse failure of `where` (body, params, query, headers). */
export function validationFailed(error: z.core.$ZodError, where: string): ApiError {
  const issues = validationIssues(error, where);
  const first = issues[0];
  const message = first ? `${first.path}: ${first.message}` : `${where} is invalid`;
  return new ApiError("validation-failed", message, { issues });
}
