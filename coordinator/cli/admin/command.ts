/**
 * `verdict admin <command>`: the admin REST endpoints for a person at a terminal. The token
 * is read from an environment variable, never from a flag (a flag's value lands in shell
 * history and in `ps`). Every request has a timeout.
 */
import { readFileSync } from "node:fs";
import {
  resolveActions,
  transactionStates,
  xidPattern,
  type AdminListResponse,
  type AdminTransactionView,
  type AuditListResponse,
  type ClusterResponse,
  type HandoverResponse,
  type ParticipantsResponse,
  type RecoveryResponse,
  type ResolveRequest,
} from "../../api/contract/schemas.js";
import { intFlag, parseCommand, wantsHelp } from "../args.js";
import { UsageError } from "../errors.js";
import {
  formatAudit,
  formatCluster,
  formatHandover,
  formatList,
  formatParticipants,
  formatRecovery,
  formatTransaction,
} from "./format.js";
import { adminRequest, type AdminTarget } from "./http.js";

export const defaultAdminUrl = "http://127.0.0.1:7400";
const defaultTokenEnv = "VERDICT_ADMIN_TOKEN";
const timeoutMsDefault = 10_000;
const timeoutMsMax = 600_000;
/** The server's own bounds: checked here too so that a typo is a usage error, not a 400. */
const listLimitMax = 1000;
const branchMax = 1000;
const cursorCharsMax = 512;
/** Pages of the server's default size: more than the default rotation keeps (docs/security.md). */
const auditExportPagesMax = 100_000;
const reasonCharsMax = 4000;

export const adminUsage = `usage: verdict admin [global flags] <command> [flags]

commands:
  list [--in-doubt] [--state S] [--limit N] [--cursor C]
                          transactions, in-doubt first (GET /admin/v1/transactions)
  show XID                one transaction: branches and log history
  resolve XID --action commit|abort|settle|forget --reason TEXT [--branch N]
                          resolve an in-doubt transaction by hand (audited)
  recovery                run recovery now and print what it did
  participants            participants: health and prepared branches
  cluster                 members, leader, term, lease, etcd members, log size
  cluster handover [--to ID]
                          hand leadership over (to a named live node, or any)
  audit [--limit N] [--cursor C] [--export]
                          the audit trail, oldest first; --export prints every
                          record as JSON lines (for archiving)

global flags:
  --url URL               the node (default $VERDICT_URL, else ${defaultAdminUrl})
  --token-env NAME        environment variable holding the admin token
                          (default ${defaultTokenEnv}); the token is never a flag
  --json                  print the server's answer as it is
  --timeout-ms N          give up on a request after N ms (default ${timeoutMsDefault})

environment (https:// nodes; docs/tls.md):
  VERDICT_CA_FILE         PEM file of the CA that signed the node's certificate
                          (default: the system's CAs)
  VERDICT_CLIENT_CERT     PEM client certificate, for nodes that require one,
  VERDICT_CLIENT_KEY      and its key (both or neither)

exit codes: 0 done, 1 refused by the server (4xx), 2 bad usage,
            3 server unreachable, timed out or failing (5xx)`;

const options = {
  url: { type: "string" },
  "token-env": { type: "string" },
  json: { type: "boolean" },
  "timeout-ms": { type: "string" },
  "in-doubt": { type: "boolean" },
  state: { type: "string" },
  limit: { type: "string" },
  cursor: { type: "string" },
  action: { type: "string" },
  reason: { type: "string" },
  branch: { type: "string" },
  to: { type: "string" },
  token: { type: "string" },
  export: { type: "boolean" },
} as const;

type Flag = keyof typeof options;
type Values = ReturnType<typeof parseCommand<typeof options>>["values"];

/** The flags each command takes besides the global ones. */
const commandFlags: Readonly<Record<string, readonly Flag[]>> = {
  list: ["in-doubt", "state", "limit", "cursor"],
  show: [],
  resolve: ["action", "reason", "branch"],
  recovery: [],
  participants: [],
  cluster: ["to"],
  audit: ["limit", "cursor", "export"],
};
const globalFlags: readonly Flag[] = ["url", "token-env", "json", "timeout-ms"];

/** What the command printed; the exit code is 0 (failures throw CliError). */
export async function runAdmin(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if (args.length === 0 || wantsHelp(args)) return adminUsage;
  // Flags may stand before or after the command: one parse over every flag, then a check
  // that the command takes the ones given.
  const { positionals, values } = parseCommand(args, options, adminUsage);
  if (values.token !== undefined) {
    throw new UsageError(
      `--token is not accepted (it would be kept in shell history and shown by ps): put the ` +
        `token in an environment variable and name it with --token-env (default ${defaultTokenEnv})`,
      adminUsage,
    );
  }
  const [command, ...operands] = positionals;
  const own = command === undefined ? undefined : commandFlags[command];
  if (command === undefined || own === undefined) {
    throw new UsageError(`unknown admin command ${JSON.stringify(command)}`, adminUsage);
  }
  for (const flag of Object.keys(values) as Flag[]) {
    if (!globalFlags.includes(flag) && !own.includes(flag))
      throw new UsageError(`--${flag} is not a flag of admin ${command}`, adminUsage);
  }
  const wantsXid = command === "show" || command === "resolve";
  const handover = command === "cluster" && operands[0] === "handover";
  if (handover) operands.shift();
  else if (values.to !== undefined) {
    throw new UsageError("--to is a flag of admin cluster handover", adminUsage);
  }
  if (operands.length !== (wantsXid ? 1 : 0)) {
    throw new UsageError(
      wantsXid
        ? `admin ${command} takes one XID`
        : `admin ${command} takes no arguments, got ${operands.join(" ")}`,
      adminUsage,
    );
  }
  const target = adminTarget(values, env);
  const nowMs = Date.now();
  const show = <T>(text: string, body: unknown, format: (b: T) => string): string =>
    values.json ? text : format(body as T);

  switch (command) {
    case "list": {
      const query = listQuery(values);
      const path = `/admin/v1/transactions${query === "" ? "" : `?${query}`}`;
      const a = await adminRequest(target, "GET", path);
      return show<AdminListResponse>(a.text, a.body, (b) => formatList(b, nowMs));
    }
    case "show": {
      const a = await adminRequest(target, "GET", `/admin/v1/transactions/${xidOf(operands)}`);
      return show<AdminTransactionView>(a.text, a.body, (b) => formatTransaction(b, nowMs));
    }
    case "resolve": {
      const xid = xidOf(operands);
      const a = await adminRequest(
        target,
        "POST",
        `/admin/v1/transactions/${xid}/resolve`,
        resolveBody(values),
      );
      return show<AdminTransactionView>(a.text, a.body, (b) => formatTransaction(b, nowMs));
    }
    case "recovery": {
      const a = await adminRequest(target, "POST", "/admin/v1/recovery", {});
      return show<RecoveryResponse>(a.text, a.body, formatRecovery);
    }
    case "participants": {
      const a = await adminRequest(target, "GET", "/admin/v1/participants");
      return show<ParticipantsResponse>(a.text, a.body, formatParticipants);
    }
    case "cluster": {
      if (handover) {
        const body = values.to === undefined ? {} : { to: values.to };
        const h = await adminRequest(target, "POST", "/admin/v1/cluster/leadership", body);
        return show<HandoverResponse>(h.text, h.body, formatHandover);
      }
      const a = await adminRequest(target, "GET", "/admin/v1/cluster");
      return show<ClusterResponse>(a.text, a.body, formatCluster);
    }
    case "audit":
      return values.export ? exportAudit(target) : auditPage(target, values, show);
    default:
      throw new UsageError(`unknown admin command ${command}`, adminUsage);
  }
}

function adminTarget(values: Values, env: NodeJS.ProcessEnv): AdminTarget {
  const url = values.url ?? env.VERDICT_URL ?? defaultAdminUrl;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(url)} is not a URL`, adminUsage);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw new UsageError(`--url must be http:// or https://, not ${url}`, adminUsage);
  const tokenEnv = values["token-env"] ?? defaultTokenEnv;
  const token = env[tokenEnv] ?? "";
  if (token === "") {
    throw new UsageError(
      `no admin token: environment variable ${tokenEnv} is unset or empty ` +
        `(export it, or name another variable with --token-env)`,
      adminUsage,
    );
  }
  const timeoutMs =
    intFlag("timeout-ms", values["timeout-ms"], { min: 1, max: timeoutMsMax }, adminUsage) ??
    timeoutMsDefault;
  const tls = adminTls(env);
  return { url: parsed.toString(), token, timeoutMs, ...(tls === undefined ? {} : { tls }) };
}

/** VERDICT_CA_FILE, VERDICT_CLIENT_CERT and VERDICT_CLIENT_KEY, read; undefined if none set. */
function adminTls(env: NodeJS.ProcessEnv): AdminTarget["tls"] {
  const read = (name: string): Buffer | undefined => {
    const path = env[name];
    if (path === undefined || path === "") return undefined;
    try {
      return readFileSync(path);
    } catch (e) {
      throw new UsageError(`${name} ${path}: ${(e as Error).message}`, adminUsage);
    }
  };
  const ca = read("VERDICT_CA_FILE");
  const cert = read("VERDICT_CLIENT_CERT");
  const key = read("VERDICT_CLIENT_KEY");
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError(
      "set both VERDICT_CLIENT_CERT and VERDICT_CLIENT_KEY, or neither",
      adminUsage,
    );
  }
  if (ca === undefined && cert === undefined) return undefined;
  return { ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert, key }) };
}

function listQuery(values: Values): string {
  const q = new URLSearchParams();
  if (values["in-doubt"]) q.set("inDoubt", "true");
  if (values.state !== undefined) {
    if (!(transactionStates as readonly string[]).includes(values.state)) {
      throw new UsageError(
        `--state must be one of ${transactionStates.join(", ")}, not ${values.state}`,
        adminUsage,
      );
    }
    q.set("state", values.state);
  }
  return pageQuery(values, q);
}

/** `--limit` and `--cursor`, added to `q`. */
function pageQuery(values: Values, q = new URLSearchParams()): string {
  const limit = intFlag("limit", values.limit, { min: 1, max: listLimitMax }, adminUsage);
  if (limit !== undefined) q.set("limit", String(limit));
  if (values.cursor !== undefined) {
    if (values.cursor === "" || values.cursor.length > cursorCharsMax)
      throw new UsageError(`--cursor must be 1 to ${cursorCharsMax} characters`, adminUsage);
    q.set("cursor", values.cursor);
  }
  return q.toString();
}

function xidOf(operands: readonly string[]): string {
  const xid = operands[0] ?? "";
  if (!xidPattern.test(xid))
    throw new UsageError(`${JSON.stringify(xid)} is not an xid (${xidPattern})`, adminUsage);
  return xid;
}

function resolveBody(values: Values): ResolveRequest {
  const action = values.action;
  if (action === undefined || !(resolveActions as readonly string[]).includes(action)) {
    throw new UsageError(
      `--action must be one of ${resolveActions.join(", ")}${action === undefined ? "" : `, not ${action}`}`,
      adminUsage,
    );
  }
  const reason = values.reason?.trim() ?? "";
  if (reason === "") {
    throw new UsageError(
      "--reason TEXT is required: it is kept in the log with who resolved it",
      adminUsage,
    );
  }
  if (reason.length > reasonCharsMax)
    throw new UsageError(`--reason is over ${reasonCharsMax} characters`, adminUsage);
  const branch = intFlag("branch", values.branch, { min: 1, max: branchMax }, adminUsage);
  return {
    action: action as ResolveRequest["action"],
    reason,
    ...(branch === undefined ? {} : { branch }),
  };
}

async function auditPage(
  target: AdminTarget,
  values: Values,
  show: <T>(text: string, body: unknown, format: (b: T) => string) => string,
): Promise<string> {
  const q = pageQuery(values);
  const a = await adminRequest(target, "GET", `/admin/v1/audit${q === "" ? "" : `?${q}`}`);
  return show<AuditListResponse>(a.text, a.body, formatAudit);
}

/** Every record, one JSON object a line, following the cursor to the end (bounded). */
async function exportAudit(target: AdminTarget): Promise<string> {
  const lines: string[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < auditExportPagesMax; pages++) {
    const q: string = cursor === null ? "" : `?cursor=${cursor}`;
    const body = (await adminRequest(target, "GET", `/admin/v1/audit${q}`))
      .body as AuditListResponse;
    lines.push(...body.records.map((r) => JSON.stringify(r)));
    cursor = body.nextCursor;
    if (cursor === null) return lines.join("\n");
  }
  throw new UsageError(`the audit trail has over ${auditExportPagesMax} pages`, adminUsage);
}
