/**
 * `verdict admin` shows what the console shows of the participants (the compiled CLI against
 * a real node on the real PostgreSQL):
 * - `show` prints each branch's participant view (pg_prepared_xacts row, locks) and `--json`
 *   is the REST body with `participants[…].view`;
 * - `participants` prints, under each prepared branch, its age and whether the log explains it:
 *   a transfer's branch names its transaction, an orphan prepared by hand is flagged.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { runCli, shown } from "./cli.js";
import { startCliNode, type CliNode } from "./fixture.js";
import { services } from "../../support/services.js";

let n: CliNode;
let held: string;

const admin = (args: string[]) => runCli(["admin", ...args], n.adminEnv);

describe("verdict admin: participant views", () => {
  before(async () => {
    n = await startCliNode();
    held = await n.transfer();
    await n.client.prepare(held);
  });
  after(async () => {
    if (held) await n?.client.abort(held);
    await n?.destroy();
  });

  test("show prints each branch's participant view; --json carries it", async () => {
    const r = await admin(["show", held]);
    assert.equal(r.code, 0, shown(r));
    const views = r.stdout.slice(r.stdout.indexOf("participant views"));
    assert.match(
      views,
      /#1 pg-a \(read .*\)\n\s+holds\s+prepared\n\s+prepared at .*\n\s+owner\s+\S+/,
    );
    assert.match(views, /#2 pg-b[\s\S]*database\s+verdict_b/);
    assert.match(views, new RegExp(`on\\s+.*${n.accounts.table}`));
    const j = await admin(["show", held, "--json"]);
    const body = JSON.parse(j.stdout) as { participants: { view?: { holds: string } }[] };
    assert.deepEqual(
      body.participants.map((p) => p.view?.holds),
      ["prepared", "prepared"],
    );
  });

  test("participants prints each prepared branch's age and whether the log explains it", async () => {
    const orphan = `${await n.cluster.clusterId()}:0orphan${Date.now()}:1`;
    const c = new pg.Client({ connectionString: services.pgUrlA });
    await c.connect();
    try {
      await c.query("begin");
      await c.query("select 1");
      await c.query(`prepare transaction '${orphan}'`);
      const r = await admin(["participants"]);
      assert.equal(r.code, 0, shown(r));
      const lines = r.stdout.split("\n");
      const after = (id: string) => lines[lines.indexOf(`  prepared: ${id}`) + 1] ?? "";
      assert.match(
        after(`${await n.cluster.clusterId()}:${held}:1`),
        /age \d+s, in the log: .* \(prepared\)/,
      );
      assert.match(after(orphan), /age \d+s, NOT in the log: an orphan/);
    } finally {
      await c.query(`rollback prepared '${orphan}'`).catch(() => undefined);
      await c.end();
    }
  });
});
