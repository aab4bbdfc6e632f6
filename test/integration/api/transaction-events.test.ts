/**
 * The decision watch, `GET /v1/transactions/{xid}/events` (Server-Sent Events), on a real node
 * with PostgreSQL participants:
 * - a subscriber sees the transaction's states in order, from `active` through `prepared` to
 *   `committed`, and the stream ends after `committed` (balances read in both databases);
 * - a late subscriber to a finished transaction (committed, or aborted by a no vote) gets its
 *   final state as the one event, and the stream ends at once;
 * - refusals are the status route's: an unknown xid 404 transaction-not-found, another
 *   principal's transaction 403 forbidden, nothing streamed;
 * - the per-token bound answers 429 too-many-streams (with Retry-After) while other tokens are
 *   still served, a closed stream frees its slot, and the node-wide bound answers 429 too;
 * - the OpenAPI document publishes both streams as text/event-stream.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pgStatements, sql, VerdictClient } from "../../../client/index.js";
import { openStream, statesOf, type OpenStream } from "./event-stream.js";
import {
  assertError,
  createAccounts,
  raw,
  startApiNode,
  waitFor,
  type Accounts,
  type ApiNode,
} from "./harness.js";

let node: ApiNode;
let accounts: Accounts;
let client: VerdictClient;
let other: VerdictClient;
const perTokenMax = 2;
const totalMax = 4;
/** Well under the 15 s heartbeat and the 250 ms tick times a few: "at once". */
const atOnceMs = 1_500;

const transfer = (amount: number) => [
  pgStatements("pg-a", [
    sql(`update ${accounts.table} set balance = balance - $1 where id = 1`, [amount], {
      expectRows: 1,
    }),
  ]),
  pgStatements("pg-b", [
    sql(`update ${accounts.table} set balance = balance + $1 where id = 1`, [amount], {
      expectRows: 1,
    }),
  ]),
];
const eventsPath = (xid: string) => `/v1/transactions/${xid}/events`;
const order = ["active", "preparing", "prepared", "committing", "committed"];

before(async () => {
  node = await startApiNode({
    limits: { eventStreamsPerPrincipalMax: perTokenMax, eventStreamsMax: totalMax },
  });
  accounts = await createAccounts({ "pg-a": [[1, 1000]], "pg-b": [[1, 0]] });
  client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
  other = new VerdictClient({ baseUrl: node.url, token: node.otherClientToken });
});
after(async () => {
  client?.close();
  other?.close();
  await node?.stop();
  await accounts?.drop();
});

describe("a transaction's event stream", () => {
  test("a subscriber sees active → prepared → committed, and the stream ends", async () => {
    const { xid } = await client.begin({ timeoutMs: 60_000 });
    for (const branch of transfer(10)) await client.enlist(xid, branch);
    const s = await openStream(node.url, eventsPath(xid), node.clientToken);
    assert.equal(s.status, 200);
    assert.match(s.contentType ?? "", /^text\/event-stream/);
    await waitFor("the first event", () => Promise.resolve(s.events.length > 0 || undefined));
    assert.deepEqual(statesOf(s), ["active"]);

    await client.prepare(xid);
    await waitFor("prepared on the stream", () =>
      Promise.resolve(statesOf(s).includes("prepared") || undefined),
    );
    const committed = await client.commit(xid);
    assert.equal(committed.state, "committed");
    const endedAtMs = await s.ended;
    const states = statesOf(s);
    assert.equal(states.at(-1), "committed", states.join(" → "));
    const ranks = states.map((st) => order.indexOf(st));
    assert.ok(!ranks.includes(-1), states.join(" → "));
    assert.deepEqual(ranks, [...ranks].sort(), `in order: ${states.join(" → ")}`);
    assert.ok(s.events.every((e) => e.event === "state"));
    assert.ok(endedAtMs - s.events.at(-1)!.atMs < atOnceMs, "ended after committed");
    const last = s.events.at(-1)!.data as { decision?: string; branches: { state: string }[] };
    assert.equal(last.decision, "commit");
    assert.deepEqual(
      last.branches.map((b) => b.state),
      ["committed", "committed"],
    );
    assert.equal(await accounts.balance("pg-a", 1), 990);
    assert.equal(await accounts.balance("pg-b", 1), 10);
  });

  test("a late subscriber gets the final state at once, and the stream closes", async () => {
    const done = await client.transact(transfer(5));
    const startMs = Date.now();
    const s = await openStream(node.url, eventsPath(done.xid), node.clientToken);
    const endedAtMs = await s.ended;
    assert.ok(endedAtMs - startMs < atOnceMs, `ended after ${endedAtMs - startMs} ms`);
    assert.deepEqual(statesOf(s), ["committed"]);
    const status = await client.status(done.xid);
    assert.deepEqual(s.events[0]?.data, status, "the event is the status route's view");

    // Aborted by a no vote (the debit would go below zero).
    const { xid } = await client.begin();
    for (const branch of transfer(1_000_000)) await client.enlist(xid, branch);
    await assert.rejects(client.commit(xid), { name: "TransactionAbortedError" });
    const late = await openStream(node.url, eventsPath(xid), node.clientToken);
    await late.ended;
    assert.deepEqual(statesOf(late), ["aborted"]);
    assert.equal((late.events[0]?.data as { reason?: { code: string } }).reason?.code, "vote-no");
  });

  test("refused like the status route: unknown xid 404, another principal's 403", async () => {
    const unknown = "0000000000000-000000000000-none";
    const [stream, status] = [
      await openStream(node.url, eventsPath(unknown), node.clientToken),
      await raw(node.url, "GET", `/v1/transactions/${unknown}`, { token: node.clientToken }),
    ];
    assert.equal(stream.status, 404);
    assert.equal(status.status, 404);
    assert.deepEqual(
      (stream.body as { error: { code: string } }).error.code,
      (status.body as { error: { code: string } }).error.code,
    );

    const { xid } = await client.begin();
    const theirs = await raw(node.url, "GET", eventsPath(xid), { token: node.otherClientToken });
    assertError(theirs, 403, "forbidden", "another client's transaction");
    const admin = await openStream(node.url, eventsPath(xid), node.adminToken);
    assert.equal(admin.status, 200, "an operator watches any transaction");
    await client.abort(xid);
    await admin.ended;
    assert.equal(statesOf(admin).at(-1), "aborted");
  });

  test("per token: 429 too-many-streams over the bound, others still served", async () => {
    const { xid } = await client.begin({ timeoutMs: 60_000 });
    const { xid: theirXid } = await other.begin({ timeoutMs: 60_000 });
    const mine: OpenStream[] = [];
    for (let i = 0; i < perTokenMax; i++) {
      const s = await openStream(node.url, eventsPath(xid), node.clientToken);
      assert.equal(s.status, 200);
      mine.push(s);
    }
    const over = await raw(node.url, "GET", eventsPath(xid), { token: node.clientToken });
    assertError(over, 429, "too-many-streams", "over the per-token bound");
    assert.equal(
      (over.body as { error: { details: { limit: string } } }).error.details.limit,
      "eventStreamsPerPrincipalMax",
    );
    assert.ok(Number(over.headers.get("retry-after")) >= 1);

    // Another token is served, and so are this token's other calls.
    const theirs = await openStream(node.url, eventsPath(theirXid), node.otherClientToken);
    assert.equal(theirs.status, 200);
    assert.equal((await client.status(xid)).state, "active");

    // A stream closed by its client frees its slot.
    mine[0]!.close();
    const again = await waitFor("a slot after a close", async () => {
      const s = await openStream(node.url, eventsPath(xid), node.clientToken);
      if (s.status === 200) return s;
      assert.equal(s.status, 429);
      return undefined;
    });
    mine[0] = again;

    // The node-wide bound: 3 open; a 4th from the other token fills it; a 5th is refused.
    const fourth = await openStream(node.url, eventsPath(theirXid), node.otherClientToken);
    assert.equal(fourth.status, 200);
    const full = await raw(node.url, "GET", eventsPath(theirXid), { token: node.adminToken });
    assertError(full, 429, "too-many-streams", "over the node-wide bound");
    assert.equal(
      (full.body as { error: { details: { limit: string } } }).error.details.limit,
      "eventStreamsMax",
    );

    await client.abort(xid);
    await other.abort(theirXid);
    for (const s of [...mine, theirs, fourth]) {
      await s.ended;
      assert.equal(statesOf(s).at(-1), "aborted");
    }
    // Every slot is free again once the streams ended.
    await sleep(100);
    const after = await openStream(node.url, eventsPath(xid), node.clientToken);
    assert.equal(after.status, 200);
    await after.ended;
  });

  test("the OpenAPI document publishes both streams as text/event-stream", async () => {
    const doc = (await raw(node.url, "GET", "/openapi.json")).body as {
      paths: Record<string, { get?: { responses: Record<string, { content: object }> } }>;
    };
    for (const path of ["/v1/transactions/{xid}/events", "/admin/v1/events"]) {
      const ok = doc.paths[path]?.get?.responses["200"];
      assert.ok(ok, path);
      assert.deepEqual(Object.keys(ok.content), ["text/event-stream"], path);
    }
  });
});
