/**
 * The admin answers as text for a person at a terminal. Pure: a body and the time in,
 * lines out. Values are shown as the server sent them (a state this build does not know
 * is printed, not refused), so the CLI keeps working while the server grows.
 */
import type {
  AdminListResponse,
  AdminTransactionSummary,
  AdminTransactionView,
  ClusterResponse,
  HandoverResponse,
  ParticipantsResponse,
  RecoveryResponse,
} from "../../api/contract/schemas.js";
import { age, cell, fields, table } from "../text.js";

export function formatList(body: AdminListResponse, nowMs: number): string {
  const rows = body.transactions.map((t) => [
    t.xid,
    t.state,
    cell(t.decision),
    cell(t.heuristic),
    t.inDoubt ? "yes" : "no",
    age(t.createdAt, nowMs),
    branchSummary(t),
  ]);
  const out = [
    rows.length === 0
      ? "no transactions"
      : table(["XID", "STATE", "DECISION", "HEURISTIC", "IN-DOUBT", "AGE", "BRANCHES"], rows),
  ];
  if (body.nextCursor !== null) out.push(`next cursor: ${body.nextCursor}`);
  return out.join("\n");
}

/** `2 prepared`, or `3: 2 committed, 1 committing` when the branches differ. */
function branchSummary(t: AdminTransactionSummary): string {
  if (t.branches.length === 0) return "0";
  const counts = new Map<string, number>();
  for (const b of t.branches) counts.set(b.state, (counts.get(b.state) ?? 0) + 1);
  if (counts.size === 1) return `${t.branches.length} ${t.branches[0]?.state}`;
  return `${t.branches.length}: ${[...counts].map(([s, n]) => `${n} ${s}`).join(", ")}`;
}

export function formatTransaction(t: AdminTransactionView, nowMs: number): string {
  const labels = Object.entries(t.labels).map(([k, v]) => `${k}=${v}`);
  const header: [string, string][] = [
    ["xid", t.xid],
    ["state", t.decision ? `${t.state} (decision ${t.decision})` : t.state],
    ["in doubt", t.inDoubt ? "yes" : "no"],
    ["principal", t.principal],
    ["created", `${t.createdAt} (${age(t.createdAt, nowMs)} ago)`],
    ["deadline", t.deadline],
  ];
  if (labels.length > 0) header.push(["labels", labels.join(" ")]);
  if (t.reason) {
    const branch = t.reason.branch === undefined ? "" : ` (branch ${t.reason.branch})`;
    header.push(["reason", `${t.reason.code}${branch}: ${cell(t.reason.message)}`]);
  }
  if (t.heuristic) header.push(["heuristic", t.heuristic]);
  const branches = t.branches.map((b) => [
    String(b.branch),
    b.participant,
    b.kind,
    b.state,
    b.vote === "no" ? `no: ${cell(b.voteReason, 80)}` : cell(b.vote),
    String(b.attempts),
    cell(b.lastError, 120),
    b.branchId,
  ]);
  const history = t.history.map((h) => [
    String(h.index),
    String(h.term),
    h.at,
    h.entry,
    cell(h.principal === undefined ? h.detail : `${h.principal}: ${h.detail ?? ""}`, 300),
  ]);
  return [
    fields(header),
    "",
    "branches",
    branches.length === 0
      ? "  (none)"
      : indent(
          table(
            ["#", "PARTICIPANT", "KIND", "STATE", "VOTE", "ATTEMPTS", "LAST ERROR", "BRANCH ID"],
            branches,
          ),
        ),
    "",
    "history",
    history.length === 0
      ? "  (none)"
      : indent(table(["INDEX", "TERM", "AT", "ENTRY", "DETAIL"], history)),
  ].join("\n");
}

export function formatRecovery(r: RecoveryResponse): string {
  const tookMs = Date.parse(r.finishedAt) - Date.parse(r.startedAt);
  const out = [
    `recovery ran ${r.startedAt} → ${r.finishedAt} (${Number.isNaN(tookMs) ? "?" : tookMs} ms)`,
    fields([
      ["branches found", String(r.branchesFound)],
      ["committed", String(r.branchesCommitted)],
      ["rolled back", String(r.branchesRolledBack)],
      ["pending (still prepared)", String(r.branchesPending)],
      ["left for later", String(r.branchesLeft)],
    ]),
  ];
  if (r.errors.length === 0) out.push("errors: none");
  else out.push("errors:", ...r.errors.map((e) => `  ${e.participant}: ${cell(e.message, 1000)}`));
  return out.join("\n");
}

export function formatParticipants(body: ParticipantsResponse): string {
  if (body.participants.length === 0) return "no participants";
  const rows = body.participants.map((p) => [
    p.name,
    p.kind,
    p.ok ? "ok" : "FAILING",
    `${p.preparedBranches.length}${p.preparedBranchesTruncated ? "+" : ""}`,
    cell(p.detail, 120),
  ]);
  const out = [table(["NAME", "KIND", "HEALTH", "PREPARED", "DETAIL"], rows)];
  for (const p of body.participants) {
    if (p.warnings.length === 0 && p.preparedBranches.length === 0) continue;
    out.push("", `${p.name}:`);
    for (const w of p.warnings) out.push(`  warning: ${cell(w, 1000)}`);
    for (const id of p.preparedBranches) out.push(`  prepared: ${id}`);
    if (p.preparedBranchesTruncated) out.push("  prepared: … (more not listed)");
  }
  return out.join("\n");
}

export function formatCluster(c: ClusterResponse): string {
  const members = c.members.map((m) => [m.id, m.role, m.leader ? "yes" : "no", m.url]);
  const etcd = (c.etcd?.endpoints ?? []).map((e) => [
    e.endpoint,
    e.healthy ? "yes" : "no",
    e.leader ? "yes" : "no",
    cell(e.dbSizeBytes),
    cell(e.error, 120),
  ]);
  const optional = (name: string, value: number | null | undefined): [string, string][] =>
    value === undefined || value === null ? [] : [[name, String(value)]];
  return [
    fields([
      ["cluster", c.clusterId],
      ["mode", c.mode],
      ["this node", c.nodeId],
      ["leader", c.leaderId === null ? "none known" : `${c.leaderId} ${c.leaderUrl ?? ""}`.trim()],
      ["term", String(c.term)],
      ...optional("lease remaining ms", c.leaseRemainingMs),
      ["commit index", String(c.commitIndex)],
      ["applied index", String(c.appliedIndex)],
      ...optional("snapshot index", c.snapshotIndex),
      ...optional("log keys", c.logKeys),
    ]),
    "",
    "members",
    indent(table(["ID", "ROLE", "LEADER", "URL"], members)),
    ...(etcd.length === 0
      ? []
      : ["", "etcd", indent(table(["ENDPOINT", "HEALTHY", "LEADER", "DB BYTES", "ERROR"], etcd))]),
  ].join("\n");
}

export function formatHandover(h: HandoverResponse): string {
  return `${h.fromNodeId} resigned term ${h.fromTerm}; ${h.to === null ? "any live node" : h.to} takes over`;
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}
