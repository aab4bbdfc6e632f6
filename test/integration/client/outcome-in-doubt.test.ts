/**
 * Proves the SDK learns the outcome of a commit in doubt from a real node (REST API, engine,
 * WAL, PostgreSQL participants) instead of giving up. An HTTP relay between the SDK and the
 * node plays the lost leader:
 * - a transaction whose begin never reached the log (an xid the node does not know): the
 *   relay answers the first commit `503 outcome-unknown`, the node's status answers 404, and
 *   the SDK repeats the commit with the same key and throws the node's presumed abort as
 *   TransactionAbortedError;
 * - a real transfer whose commit reaches the node but whose every answer is lost (the
 *   connection drops): the SDK asks the status, learns `committed`, and the money moved in
 *   both databases (read directly).
 * No prepared transaction of this cluster is left at the end (checked by the harness).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import {
  pgStatements,
  sql,
  TransactionAbortedError,
  VerdictClient,
} from "../../../client/index.js";
import { newXid } from "../../../coordinator/core/ids.js";
import { createAccounts, startApiNode, type Accounts, type ApiNode } from "../api/harness.js";

/** What the relay does with one request: pass it on, answer for the node, or lose the answer. */
type Play = "forward" | "outcome-unknown" | "forward-then-drop";

interface Relay {
  readonly url: string;
  readonly seen: string[];
  close(): Promise<void>;
}

/** An HTTP relay to `target`; `play` decides per request (method and path). */
async function startRelay(target: string, play: (call: string) => Play): Promise<Relay> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const call = `${req.method} ${req.url}`;
      seen.push(call);
      const action = play(call);
      if (action === "outcome-unknown") {
        res.writeHead(503, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            error: { code: "outcome-unknown", message: "relay: lost", retryable: true },
          }),
        );
        return;
      }
      const headers = { ...req.headers };
      delete headers.host;
      void fetch(target + (req.url ?? ""), {
        method: req.method ?? "GET",
        headers: headers as Record<string, string>,
        ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
      }).then(
        async (answer) => {
          const text = await answer.text();
          // The node decided; the answer is lost on its way back.
          if (action === "forward-then-drop") return void req.socket.destroy();
          res.writeHead(answer.status, { "content-type": "application/json" });
          res.end(text);
        },
        () => void req.socket.destroy(),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let node: ApiNode;
let accounts: Accounts;
const relays: Relay[] = [];

before(async () => {
  node = await startApiNode();
  accounts = await createAccounts({ "pg-a": [[1, 1000]], "pg-b": [[1, 0]] });
});

after(async () => {
  await Promise.all(relays.map((r) => r.close()));
  try {
    await node?.stop();
  } finally {
    await accounts?.drop();
  }
});

function clientVia(relay: Relay): VerdictClient {
  return new VerdictClient({
    baseUrl: relay.url,
    token: node.clientToken,
    retry: { attemptsMax: 3, backoffMsInitial: 5, backoffMsMax: 20 },
    outcomeChecksMax: 3,
  });
}

test("commit in doubt of an xid the log never held: 404 status, repeated commit, presumed abort", async () => {
  const xid = newXid(Date.now(), randomBytes(8).toString("hex"));
  let commits = 0;
  const relay = await startRelay(node.url, (call) =>
    call.endsWith("/commit") && ++commits === 1 ? "outcome-unknown" : "forward",
  );
  relays.push(relay);
  const err = await clientVia(relay)
    .commit(xid)
    .then(
      () => assert.fail("commit resolved"),
      (e: unknown) => e,
    );
  assert.ok(err instanceof TransactionAbortedError, String(err));
  assert.equal(err.reason?.code, "presumed-abort");
  assert.deepEqual(relay.seen, [
    `POST /v1/transactions/${xid}/commit`,
    `GET /v1/transactions/${xid}`,
    `POST /v1/transactions/${xid}/commit`,
  ]);
});

test("a transfer whose commit answers are all lost: the status tells committed, both rows moved", async () => {
  const relay = await startRelay(node.url, (call) =>
    call.endsWith("/commit") ? "forward-then-drop" : "forward",
  );
  relays.push(relay);
  const client = clientVia(relay);
  const { xid } = await client.begin({ timeoutMs: 30_000 });
  for (const [db, sign] of [
    ["pg-a", "-"],
    ["pg-b", "+"],
  ] as const) {
    const update = `update ${accounts.table} set balance = balance ${sign} $1 where id = 1`;
    await client.enlist(xid, pgStatements(db, [sql(update, [25], { expectRows: 1 })]));
  }
  const view = await client.commit(xid);
  assert.ok(view.state === "committed" || view.state === "committing", view.state);
  assert.ok(relay.seen.includes(`GET /v1/transactions/${xid}`), "the status was asked");
  assert.equal(await accounts.balance("pg-a", 1), 975);
  assert.equal(await accounts.balance("pg-b", 1), 25);
});
