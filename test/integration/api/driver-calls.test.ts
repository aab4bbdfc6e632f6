/**
 * The participant calls the API makes outside the protocol go through the driver, with its
 * bound, metrics and typed errors, on a real node and real PostgreSQL:
 * - the report-prepared check (pg_prepared_xacts, through a service-prepared vote) is counted
 *   in verdict_participant_call_seconds as `check-prepared`, whether the branch is prepared
 *   (200) or not (409 branch-not-prepared);
 * - GET /admin/v1/participants asks each participant for its health and its prepared branches
 *   through the driver: one `health` and one `list-prepared` call per participant per listing.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { pgServicePrepared, VerdictClient } from "../../../client/index.js";
import { runServicePrepared } from "../../../client/postgres.js";
import { assertError, databases, metricValue, raw, startApiNode, type ApiNode } from "./harness.js";

let node: ApiNode;
let client: VerdictClient;
let service: pg.Client;

const callCount = (participant: string, op: string) =>
  metricValue(node.url, "verdict_participant_call_seconds_count", { participant, op });

before(async () => {
  node = await startApiNode();
  client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
  service = new pg.Client({ connectionString: databases["pg-b"] });
  await service.connect();
});

after(async () => {
  await service?.end();
  await node?.stop();
});

describe("direct participant calls go through the driver", () => {
  test("the report-prepared check is a counted driver call, prepared or not", async () => {
    assert.equal(await callCount("pg-b", "check-prepared"), 0);
    const prepared = await client.begin({ timeoutMs: 10_000 });
    await runServicePrepared(client, prepared.xid, "pg-b", service, () => Promise.resolve(), {
      schema: node.schema,
    });
    assert.equal(await callCount("pg-b", "check-prepared"), 1);
    await client.abort(prepared.xid);

    // Enlisted, never prepared by the service: the check votes no.
    const unprepared = await client.begin({ timeoutMs: 10_000 });
    const { branch } = await client.enlist(unprepared.xid, pgServicePrepared("pg-b"));
    const answer = await raw(
      node.url,
      "POST",
      `/v1/transactions/${unprepared.xid}/branches/${branch}/prepared`,
      { token: node.clientToken, body: {} },
    );
    assertError(answer, 409, "branch-not-prepared", "report of an unprepared branch");
    assert.equal(await callCount("pg-b", "check-prepared"), 2);
    await client.abort(unprepared.xid);
  });

  test("the admin participant listing asks each participant through the driver", async () => {
    const before = {
      health: await callCount("pg-a", "health"),
      listed: await callCount("pg-a", "list-prepared"),
    };
    const answer = await raw(node.url, "GET", "/admin/v1/participants", {
      token: node.adminToken,
    });
    assert.equal(answer.status, 200, answer.text);
    const names = (answer.body as { participants: { name: string; ok: boolean }[] }).participants;
    assert.deepEqual(
      names.map((p) => [p.name, p.ok]),
      [
        ["pg-a", true],
        ["pg-b", true],
      ],
    );
    for (const name of ["pg-a", "pg-b"]) {
      assert.ok((await callCount(name, "list-prepared")) >= 1, `${name} list-prepared counted`);
    }
    assert.equal(await callCount("pg-a", "health"), before.health + 1);
    assert.equal(await callCount("pg-a", "list-prepared"), before.listed + 1);
  });
});
