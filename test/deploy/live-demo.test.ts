// Proves the README's main command, `./start.sh --script` (set-up, then the live demo's scripted run): three
// nodes over the local etcd under a transfer workload, the leader SIGKILLed three times and
// restarted, another node leading after each kill, and the final audit, read from PostgreSQL,
// Redis and Kafka directly, holding (exit 0). And that the audit can fail: on a run's data
// doctored by hand (a transfer applied in one database only, an aborted one applied), it names
// the broken checks.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  audit,
  closeWorld,
  openWorld,
  prepareWorld,
  type Told,
} from "../../deploy/demo/live/world.js";
import { projectDir } from "../unit/deploy/deploy-files.js";

void describe("the live demo", () => {
  void test("scripted: three leader kills, another leader each time, the audit holds", () => {
    const { NODE_TEST_CONTEXT: _context, ...env } = process.env;
    // The README's main command itself: its set-up finds everything installed and running.
    const r = spawnSync(join(projectDir, "start.sh"), ["--script"], {
      cwd: projectDir,
      env,
      encoding: "utf8",
      timeout: 290_000,
    });
    const output = `${r.stdout}${r.stderr}`;
    assert.equal(r.status, 0, output.slice(-4000));
    const kills = [...output.matchAll(/kill (\d)\/3: (demo-\d)\n {2}(demo-\d) leads/g)];
    assert.equal(kills.length, 3, output);
    for (const [, , killed, next] of kills) assert.notEqual(next, killed);
    assert.match(output, /the audit holds/);
    assert.doesNotMatch(output, /FAIL/);
  });

  void test("the audit fails on a transfer applied in one store only, or an aborted one applied", async () => {
    const world = await openWorld(`audit-check-${Date.now().toString(36)}`);
    try {
      await prepareWorld(world);
      const record = "insert into live_transfers (run, transfer, amount) values ($1, $2, 1)";
      await world.pools.verdict_a.query(record, [world.runId, 1]);
      await world.pools.verdict_a.query(record, [world.runId, 2]);
      const told = new Map<number, Told>([
        [1, "committed"],
        [2, "aborted"],
      ]);
      const result = await audit(world, told, "no-such-cluster", "no-such-namespace");
      assert.equal(result.ok, false);
      const failed = result.checks.filter((c) => !c.ok).map((c) => c.name);
      assert.deepEqual(failed, [
        "all-or-nothing",
        "committed are applied",
        "aborted are not applied",
      ]);
    } finally {
      await closeWorld(world);
    }
  });
});
