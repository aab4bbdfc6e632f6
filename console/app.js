// Verdict's web console (docs/console.md). No framework: the DOM is built with createElement
// and every value from the server is set as text (Text nodes, textContent), never as markup;
// the page's Content-Security-Policy requires Trusted Types, so an innerHTML would throw.
// The admin token is kept in sessionStorage and sent as a bearer header (no cookies).

const tokenKey = "verdict.adminToken";
/** Pages of the admin list read for the overview and the heuristic cases, at most. */
const overviewPagesMax = 20;
const overviewPageSize = 500;
const listPageSize = 50;
const states = [
  "active",
  "preparing",
  "prepared",
  "committing",
  "committed",
  "aborting",
  "aborted",
];
/** Runbook sections by heuristic outcome (headings of docs/runbook.md, as anchors). */
const runbookFor = {
  "heuristic-rollback": ["heuristic-outcomes", "a-dba-rolled-back-a-prepared-branch"],
  "heuristic-commit": ["heuristic-outcomes"],
  "heuristic-mixed": ["heuristic-outcomes", "a-dba-rolled-back-a-prepared-branch"],
};

const main = document.getElementById("main");
const live = document.getElementById("live");
const logout = document.getElementById("logout");

// ---- DOM helpers: children are nodes or text; nothing is ever parsed as HTML ----

function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "value") e.value = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const link = (href, text, attrs = {}) => h("a", { href, ...attrs }, text);
const txLink = (xid) => link(`#/tx/${encodeURIComponent(xid)}`, xid, { class: "mono" });
const table = (head, rows, attrs = {}) =>
  h(
    "table",
    attrs,
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        head.map((c) => h("th", { scope: "col" }, c)),
      ),
    ),
    h(
      "tbody",
      {},
      rows.map((r) =>
        h(
          "tr",
          {},
          r.map((c) => h("td", {}, c)),
        ),
      ),
    ),
  );
const ageText = (ms) =>
  ms === null || ms === undefined
    ? "-"
    : ms < 60_000
      ? `${Math.round(ms / 1000)} s`
      : ms < 3_600_000
        ? `${Math.round(ms / 60_000)} min`
        : `${(ms / 3_600_000).toFixed(1)} h`;
const since = (iso) => (iso ? Date.now() - Date.parse(iso) : null);
const labelsText = (labels) =>
  Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");

// ---- the API ----

class ApiFailure extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

function token() {
  return sessionStorage.getItem(tokenKey);
}

async function api(path, init = {}) {
  const res = await fetch(path, {
    ...init,
    credentials: "omit",
    headers: {
      authorization: `Bearer ${token()}`,
      ...(init.body ? { "content-type": "application/json" } : {}),
    },
  });
  const body = await res.json().catch(() => undefined);
  if (!res.ok) {
    const err = body?.error ?? { code: `http-${res.status}`, message: res.statusText };
    if (res.status === 401) sessionStorage.removeItem(tokenKey);
    throw new ApiFailure(res.status, err.code, err.message);
  }
  return body;
}

/** The admin list, following its cursor, at most `pagesMax` pages. */
async function listAll(query, pagesMax) {
  const rows = [];
  let cursor;
  for (let page = 0; page < pagesMax; page++) {
    const q = new URLSearchParams({ ...query, limit: String(overviewPageSize) });
    if (cursor) q.set("cursor", cursor);
    const body = await api(`/admin/v1/transactions?${q}`);
    rows.push(...body.transactions);
    cursor = body.nextCursor;
    if (!cursor) return { rows, complete: true };
  }
  return { rows, complete: false };
}

// ---- pages ----

async function overviewPage() {
  const [list, participants, cluster] = await Promise.all([
    listAll({}, overviewPagesMax),
    api("/admin/v1/participants"),
    api("/admin/v1/cluster"),
  ]);
  const counts = Object.fromEntries(states.map((s) => [s, 0]));
  for (const t of list.rows) counts[t.state] += 1;
  const inDoubt = list.rows.filter((t) => t.inDoubt);
  const heuristic = list.rows.filter((t) => t.heuristic);
  const more = list.complete ? "" : "+";
  return [
    h("h1", {}, "Overview"),
    h(
      "div",
      { class: "cards", "aria-label": "Transactions by state" },
      h(
        "div",
        { class: `card ${inDoubt.length > 0 ? "bad" : ""}`, "data-count": "in-doubt" },
        h("b", {}, `${inDoubt.length}${more}`),
        "in doubt",
      ),
      h(
        "div",
        { class: `card ${heuristic.length > 0 ? "warn" : ""}`, "data-count": "heuristic" },
        h("b", {}, `${heuristic.length}${more}`),
        link("#/heuristics", "heuristic cases"),
      ),
      states.map((s) =>
        h(
          "div",
          { class: "card", "data-count": s },
          h("b", {}, `${counts[s]}${more}`),
          link(`#/transactions?state=${s}`, s),
        ),
      ),
    ),
    h("h2", {}, "In doubt"),
    inDoubt.length === 0
      ? h("p", {}, "Nothing in doubt.")
      : table(
          ["xid", "state", "age", "labels", "heuristic"],
          inDoubt
            .slice(0, 20)
            .map((t) => [
              txLink(t.xid),
              t.state,
              ageText(since(t.createdAt)),
              labelsText(t.labels),
              t.heuristic ?? "",
            ]),
          { id: "in-doubt" },
        ),
    h("h2", {}, "Participants"),
    table(
      ["name", "kind", "health", "prepared", "not in the log", "detail"],
      participants.participants.map((p) => {
        const orphans = p.prepared.filter((b) => !b.explained).length;
        return [
          p.name,
          p.kind,
          h("span", { class: p.ok ? "ok" : "bad" }, p.ok ? "ok" : "failing"),
          String(p.prepared.length),
          h("span", { class: orphans > 0 ? "warn" : "" }, String(orphans)),
          [p.detail, ...p.warnings].join("; "),
        ];
      }),
    ),
    recoveryButton(),
    participants.participants.some((p) => p.prepared.length > 0)
      ? [
          h("h3", {}, "Prepared branches"),
          table(
            ["participant", "branch id", "age", "log", "transaction"],
            participants.participants.flatMap((p) =>
              p.prepared.map((b) => [
                p.name,
                h("span", { class: "mono" }, b.branchId),
                ageText(b.ageMs),
                b.explained
                  ? `explained (${b.state})`
                  : h("span", { class: "warn" }, "orphan: not in the log"),
                b.xid ? txLink(b.xid) : "",
              ]),
            ),
          ),
        ]
      : [],
    h("h2", {}, "Cluster"),
    h(
      "p",
      {},
      `cluster ${cluster.clusterId}, leader ${cluster.leaderId ?? "none"}, term ${cluster.term}, ` +
        `applied index ${cluster.appliedIndex}`,
    ),
    table(
      ["node", "url", "role", "leader", "reachable"],
      cluster.members.map((m) => [
        m.id,
        m.url,
        m.role,
        m.leader ? "yes" : "",
        m.reachable === false ? h("span", { class: "bad" }, "no") : "yes",
      ]),
    ),
    cluster.etcd ? h("pre", {}, JSON.stringify(cluster.etcd, null, 2)) : [],
  ];
}

/** The last recovery run's answer: kept across the live re-renders it causes. */
let lastRecovery = "";

/** Runs the recovery scan now (orphans are rolled back, decided branches finished). */
function recoveryButton() {
  const out = h("span", { id: "recovery-result", role: "status" }, lastRecovery);
  const run = async () => {
    try {
      const r = await api("/admin/v1/recovery", { method: "POST" });
      lastRecovery =
        ` found ${r.branchesFound}, committed ${r.branchesCommitted}, rolled back ` +
        `${r.branchesRolledBack}, decided and under way ${r.branchesPending}, left ${r.branchesLeft}` +
        (r.errors.length ? `; errors: ${r.errors.map((e) => e.message).join("; ")}` : "");
    } catch (e) {
      lastRecovery = ` refused: ${e.message}`;
    }
    void render();
  };
  return h(
    "p",
    {},
    h(
      "button",
      { type: "button", id: "run-recovery", onclick: () => void run() },
      "Run recovery now",
    ),
    out,
  );
}

function parseQuery(query) {
  return Object.fromEntries(new URLSearchParams(query));
}

async function transactionsPage(query) {
  const q = parseQuery(query);
  const serverQuery = new URLSearchParams({ limit: String(listPageSize) });
  if (q.state) serverQuery.set("state", q.state);
  if (q.cursor) serverQuery.set("cursor", q.cursor);
  const body = await api(`/admin/v1/transactions?${serverQuery}`);
  // Label, participant and age filter the page the server answered (the list's own order
  // and cursor stay the server's, so paging is stable).
  const [lk, lv] = (q.label ?? "").split("=");
  const minAgeMs = Number(q.minAgeS ?? 0) * 1000;
  const rows = body.transactions.filter(
    (t) =>
      (!q.label || (lv === undefined ? lk in t.labels : t.labels[lk] === lv)) &&
      (!q.participant || t.branches.some((b) => b.participant === q.participant)) &&
      (!minAgeMs || since(t.createdAt) >= minAgeMs),
  );
  const form = h(
    "form",
    {
      class: "inline",
      onsubmit: (e) => {
        e.preventDefault();
        const data = new FormData(e.target);
        const next = new URLSearchParams();
        for (const [k, v] of data) if (v) next.set(k, v);
        location.hash = `#/transactions?${next}`;
      },
    },
    h(
      "label",
      {},
      "State",
      h(
        "select",
        { name: "state" },
        h("option", { value: "" }, "any"),
        states.map((s) => h("option", { value: s, selected: q.state === s }, s)),
      ),
    ),
    h("label", {}, "Label (key=value)", h("input", { name: "label", value: q.label ?? "" })),
    h("label", {}, "Participant", h("input", { name: "participant", value: q.participant ?? "" })),
    h(
      "label",
      {},
      "Older than (s)",
      h("input", { name: "minAgeS", type: "number", min: "0", value: q.minAgeS ?? "" }),
    ),
    h("button", { type: "submit" }, "Filter"),
  );
  const pageLink = (cursor, text) => {
    const next = new URLSearchParams(q);
    if (cursor) next.set("cursor", cursor);
    else next.delete("cursor");
    return link(`#/transactions?${next}`, text);
  };
  return [
    h("h1", {}, "Transactions"),
    form,
    h("p", {}, `${rows.length} of ${body.transactions.length} on this page match.`),
    table(
      ["xid", "state", "in doubt", "heuristic", "age", "participants", "labels"],
      rows.map((t) => [
        txLink(t.xid),
        t.state,
        t.inDoubt ? h("span", { class: "bad" }, "yes") : "",
        t.heuristic ? h("span", { class: "warn" }, t.heuristic) : "",
        ageText(since(t.createdAt)),
        [...new Set(t.branches.map((b) => b.participant))].join(", "),
        labelsText(t.labels),
      ]),
      { id: "tx-list" },
    ),
    h(
      "p",
      {},
      q.cursor ? pageLink(undefined, "First page") : "",
      " ",
      body.nextCursor ? pageLink(body.nextCursor, "Next page") : "Last page.",
    ),
  ];
}

function viewFacts(v) {
  const rows = [["holds", v.holds]];
  if (v.kind === "postgres") {
    if (v.prepared) {
      rows.push(["prepared at", v.prepared.preparedAt]);
      rows.push(["owner", v.prepared.owner]);
      rows.push(["database", v.prepared.database]);
    }
    rows.push(["locks", `${v.locks.held} held for ${ageText(v.locks.heldForMs)}`]);
    if (v.locks.relations.length) rows.push(["on", v.locks.relations.join(", ")]);
    for (const b of v.locks.blocked) {
      rows.push(["blocks", `pid ${b.pid} (${b.user}, ${ageText(b.waitingMs)}): ${b.query}`]);
    }
    rows.push(["marker", v.marker.present ? `yes (${v.marker.at ?? ""})` : "no"]);
    if (v.marker.forged) rows.push(["forged markers", String(v.marker.forged)]);
    rows.push(["tombstone", v.tombstone.present ? `yes (${v.tombstone.at ?? ""})` : "no"]);
  } else if (v.kind === "redis") {
    if (v.staged) {
      rows.push(["staged at", v.staged.preparedAt]);
      rows.push(["staged", `${v.staged.ops} op(s), ${v.staged.preconditions} precondition(s)`]);
      for (const op of v.staged.firstOps) rows.push([op.op, `${op.key} ${op.detail}`]);
    }
    rows.push(["locks held", v.locksHeld.join(", ") || "none"]);
    rows.push([
      "outcome",
      v.outcome ? `${v.outcome.outcome} at ${v.outcome.at} (term ${v.outcome.term})` : "none",
    ]);
  } else if (v.kind === "kafka") {
    rows.push([
      "marker",
      v.marker.committed
        ? `committed at ${v.marker.topic}/${v.marker.partition}@${v.marker.offset}`
        : `not committed (read ${v.marker.topic}/${v.marker.partition} ${v.marker.scannedFrom}–${v.marker.scannedUntil})`,
    ]);
    rows.push([
      "transactional id",
      `${v.transactionalId.id}: ${v.transactionalId.state ?? "state unknown"}`,
    ]);
  }
  return h(
    "dl",
    { class: "view" },
    rows.map(([k, val]) => [h("dt", {}, k), h("dd", {}, val)]),
  );
}

/** The last resolve's answer, by xid: kept across the re-renders that follow it. */
let lastResolve = { xid: "", show: () => "" };

function resolveForm(t) {
  const result = h(
    "div",
    { id: "resolve-result", role: "alert" },
    lastResolve.xid === t.xid ? lastResolve.show() : "",
  );
  const answer = (show) => {
    lastResolve = { xid: t.xid, show };
    result.replaceChildren(show());
  };
  const confirmBox = h("div", { id: "confirm" });
  const action = h(
    "select",
    { name: "action", id: "action" },
    ["commit", "abort", "settle", "forget"].map((a) => h("option", { value: a }, a)),
  );
  const branch = h("input", { name: "branch", id: "branch", type: "number", min: "1" });
  const reason = h("input", { name: "reason", id: "reason", required: true, size: "60" });
  const send = async (chosen) => {
    confirmBox.replaceChildren();
    const body = { action: chosen.action, reason: chosen.reason };
    if (chosen.branch) body.branch = Number(chosen.branch);
    try {
      const after = await api(`/admin/v1/transactions/${encodeURIComponent(t.xid)}/resolve`, {
        method: "POST",
        body: JSON.stringify(body),
      });
      const audit = after.history.filter((e) => e.entry === "operator-resolution").at(-1);
      answer(() =>
        h(
          "p",
          { class: "notice", id: "resolved" },
          chosen.action === "forget"
            ? `forget accepted: ${t.xid} is forgotten; the log's forget entry keeps who and why.`
            : `${chosen.action} accepted: the transaction is ${after.state}.`,
          audit && chosen.action !== "forget"
            ? ` Audit record #${audit.index} at ${audit.at} by ${audit.principal ?? "?"}: ${audit.detail ?? ""}`
            : "",
        ),
      );
      if (chosen.action !== "forget") setTimeout(() => void render(), 0);
    } catch (e) {
      answer(() => h("p", { class: "error", id: "refused" }, `Refused: ${e.message}`));
    }
  };
  const form = h(
    "form",
    {
      class: "inline",
      id: "resolve",
      onsubmit: (e) => {
        e.preventDefault();
        const chosen = { action: action.value, reason: reason.value.trim(), branch: branch.value };
        result.replaceChildren();
        if (!chosen.reason) {
          result.replaceChildren(h("p", { class: "error" }, "A reason is required."));
          return;
        }
        confirmBox.replaceChildren(
          h(
            "p",
            {},
            `${chosen.action} transaction `,
            h("span", { class: "mono" }, t.xid),
            chosen.branch ? ` (branch ${chosen.branch})` : "",
            `? Reason: ${chosen.reason}`,
          ),
          h(
            "button",
            { type: "button", id: "confirm-yes", onclick: () => void send(chosen) },
            `Yes, ${chosen.action} ${t.xid}`,
          ),
          " ",
          h("button", { type: "button", onclick: () => confirmBox.replaceChildren() }, "Cancel"),
        );
        document.getElementById("confirm-yes")?.focus();
      },
    },
    h("label", { for: "action" }, "Action", action),
    h("label", { for: "branch" }, "Branch (settle only)", branch),
    h("label", { for: "reason" }, "Reason (incident, what you checked)", reason),
    h("button", { type: "submit" }, "Review…"),
  );
  return [h("h2", {}, "Resolve"), form, confirmBox, result];
}

async function transactionPage(xid) {
  let t;
  try {
    t = await api(`/admin/v1/transactions/${encodeURIComponent(xid)}`);
  } catch (e) {
    // Just forgotten here: its answer stays on screen above the 404.
    if (lastResolve.xid !== xid) throw e;
    return [
      h("h1", {}, "Transaction ", h("span", { class: "mono" }, xid)),
      lastResolve.show(),
      h("p", {}, e.message),
    ];
  }
  const views = new Map((t.participants ?? []).map((p) => [p.branch, p]));
  return [
    h("h1", {}, "Transaction ", h("span", { class: "mono", id: "xid" }, t.xid)),
    h(
      "dl",
      { class: "view" },
      [
        ["state", t.state + (t.decision ? ` (decision ${t.decision})` : "")],
        ["in doubt", t.inDoubt ? "yes" : "no"],
        ["heuristic", t.heuristic ?? "none"],
        ["principal", t.principal],
        ["created", t.createdAt],
        ["deadline", t.deadline],
        ["labels", labelsText(t.labels)],
        ["reason", t.reason ? `${t.reason.code}: ${t.reason.message}` : ""],
      ].map(([k, v]) => [h("dt", {}, k), h("dd", { "data-field": k }, v)]),
    ),
    t.heuristic
      ? h(
          "p",
          { class: "warn" },
          "Heuristic case: ",
          (runbookFor[t.heuristic] ?? []).map((a) => [
            link(`#/runbook/${a}`, `runbook: ${a}`),
            " ",
          ]),
        )
      : "",
    h("h2", {}, "Branches: Verdict's view and the participant's own"),
    table(
      ["#", "participant", "Verdict state", "vote", "attempts", "last error", "participant's view"],
      t.branches.map((b) => {
        const p = views.get(b.branch);
        return [
          String(b.branch),
          `${b.participant} (${b.kind})`,
          b.state,
          b.vote ? b.vote + (b.voteReason ? `: ${b.voteReason}` : "") : "-",
          String(b.attempts),
          b.lastError ?? "",
          p?.view ? viewFacts(p.view) : h("span", { class: "bad" }, p?.error ?? "no view"),
        ];
      }),
    ),
    h("h2", {}, "Timeline (the log's history)"),
    h(
      "ol",
      { class: "timeline" },
      t.history.map((e) =>
        h(
          "li",
          {},
          `${e.at} #${e.index} (term ${e.term}) `,
          h("strong", {}, e.entry),
          e.principal ? ` by ${e.principal}` : "",
          e.detail ? `: ${e.detail}` : "",
        ),
      ),
    ),
    resolveForm(t),
  ];
}

async function heuristicsPage() {
  const list = await listAll({}, overviewPagesMax);
  const cases = list.rows.filter((t) => t.heuristic);
  return [
    h("h1", {}, "Heuristic cases"),
    h(
      "p",
      {},
      "Someone else decided a branch against Verdict's decision. Reconcile by hand, then " +
        "resolve with forget (the log keeps who and why).",
    ),
    cases.length === 0
      ? h("p", {}, "No heuristic case.")
      : table(
          ["xid", "outcome", "state", "age", "labels", "runbook"],
          cases.map((t) => [
            txLink(t.xid),
            h("span", { class: "warn" }, t.heuristic),
            t.state,
            ageText(since(t.createdAt)),
            labelsText(t.labels),
            (runbookFor[t.heuristic] ?? []).map((a) => [link(`#/runbook/${a}`, a), " "]),
          ]),
        ),
  ];
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
const slug = (heading) =>
  heading
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, "")
    .replace(/ /g, "-");

async function runbookPage(anchor) {
  const res = await fetch("/console/runbook.md", { credentials: "omit" });
  const lines = (await res.text()).split("\n");
  const start = lines.findIndex((l) => /^#+ /.test(l) && slug(l.replace(/^#+ /, "")) === anchor);
  if (start < 0) return [h("p", { class: "error" }, `No runbook section ${anchor}.`)];
  const level = /^#+/.exec(lines[start])[0].length;
  let end = start + 1;
  while (
    end < lines.length &&
    !(/^#+ /.test(lines[end]) && /^#+/.exec(lines[end])[0].length <= level)
  )
    end++;
  return [
    h("p", {}, "From docs/runbook.md:"),
    h("h1", {}, lines[start].replace(/^#+ /, "")),
    h("pre", {}, lines.slice(start + 1, end).join("\n")),
  ];
}

function loginPage(message) {
  const input = h("input", { type: "password", id: "token", autocomplete: "off", required: true });
  return [
    h("h1", {}, "Admin token"),
    h(
      "p",
      {},
      "Paste an admin token. It is kept in this tab's session storage only and sent as a " +
        "bearer header; closing the tab forgets it.",
    ),
    message ? h("p", { class: "error", role: "alert" }, message) : "",
    h(
      "form",
      {
        class: "inline",
        onsubmit: (e) => {
          e.preventDefault();
          sessionStorage.setItem(tokenKey, input.value.trim());
          void render();
          startEvents();
        },
      },
      h("label", { for: "token" }, "Token", input),
      h("button", { type: "submit" }, "Use token"),
    ),
  ];
}

// ---- routing and live updates ----

function route() {
  const hash = location.hash.replace(/^#/, "") || "/overview";
  const [path, query = ""] = hash.split("?");
  const parts = path.split("/").filter(Boolean);
  return { page: parts[0] ?? "overview", arg: decodeURIComponent(parts[1] ?? ""), query };
}

let rendering = 0;
async function render() {
  const r = route();
  const mine = ++rendering;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.page === r.page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  logout.hidden = !token();
  if (!token() && r.page !== "runbook") {
    main.replaceChildren(...loginPage());
    return;
  }
  let content;
  try {
    content =
      r.page === "transactions"
        ? await transactionsPage(r.query)
        : r.page === "tx"
          ? await transactionPage(r.arg)
          : r.page === "heuristics"
            ? await heuristicsPage()
            : r.page === "runbook"
              ? await runbookPage(r.arg)
              : await overviewPage();
  } catch (e) {
    content =
      e instanceof ApiFailure && e.status === 401
        ? loginPage(`The token was refused: ${e.message}`)
        : [h("p", { class: "error", role: "alert" }, e.message)];
  }
  if (mine !== rendering) return; // a newer render started meanwhile
  main.replaceChildren(...[content].flat(Infinity));
  document.body.dataset.page = r.page;
}

/** True while the operator is typing or confirming: a live refresh then waits (no input lost). */
function busy() {
  const active = document.activeElement;
  if (active && main.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) {
    return true;
  }
  if (main.querySelector("#reason")?.value) return true;
  return (main.querySelector("#confirm")?.childElementCount ?? 0) > 0;
}

let events;
/** Reads the admin event stream with fetch (EventSource cannot send a bearer header). */
function startEvents() {
  if (events || !token()) return;
  events = new AbortController();
  const { signal } = events;
  (async () => {
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        const res = await fetch("/admin/v1/events", {
          headers: { authorization: `Bearer ${token()}` },
          credentials: "omit",
          signal,
        });
        if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
        live.textContent = "live";
        live.classList.add("on");
        attempt = 0;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        let first = true;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const frame = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            if (!frame.startsWith("event: change")) continue;
            if (first) first = false;
            else if (!busy()) void render();
          }
        }
      } catch {
        // Reconnect below, after a pause that grows to 10 s.
      }
      live.textContent = "offline";
      live.classList.remove("on");
      await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** attempt)));
    }
  })();
}

logout.addEventListener("click", () => {
  sessionStorage.removeItem(tokenKey);
  events?.abort();
  events = undefined;
  void render();
});
window.addEventListener("hashchange", () => void render());
void render();
startEvents();
