/**
 * The money the transfer benches move, before and after: fresh accounts in both databases
 * (after rolling back what a crashed earlier run left prepared), and the end-of-run checks —
 * money conserved, the money moved equal to what confirmed commits moved, nothing left
 * prepared. Shared by bench/transfer.ts and bench/cluster.ts.
 */
import {
  createAccounts,
  directGidPrefix,
  dropSchema,
  preparedWithPrefix,
  rollBackStaleDirect,
  totalBalance,
} from "./accounts.js";
import { say } from "./args.js";
import type { Databases } from "./scenarios.js";

const balanceStart = 1_000_000;

/** Balances before the run: across both databases, and of verdict_b alone. */
export interface MoneyBefore {
  readonly total: bigint;
  readonly b: bigint;
}

/** What the checks need of a run of transfers (a subset of measure.ts's `Measured`). */
export interface TransfersRun {
  readonly scenario: { readonly id: string; movedAtoB(): number };
  readonly result: { readonly errors: number };
}

export async function setUpAccounts(db: Databases): Promise<MoneyBefore> {
  for (const url of [db.urlA, db.urlB]) {
    const stale = await rollBackStaleDirect(url);
    if (stale > 0) say(`rolled back ${stale} prepared transactions left by an earlier bench run`);
    await createAccounts(url, db.accounts, balanceStart);
  }
  return {
    total: (await totalBalance(db.urlA)) + (await totalBalance(db.urlB)),
    b: await totalBalance(db.urlB),
  };
}

/**
 * Money conserved across both databases; the money moved a → b equal to what confirmed
 * commits moved (when no cross-database transfer — a scenario whose id starts with "A" or
 * "M" — failed); nothing left prepared. Prints each; answers whether all held. Drops the Verdict
 * schemas when Verdict left nothing prepared, and rolls back what the direct client left.
 */
export async function checkMoney(run: {
  readonly db: Databases;
  readonly runId: string;
  readonly schemas: readonly string[];
  readonly runs: readonly TransfersRun[];
  readonly verdictLeft: readonly string[];
  readonly before: MoneyBefore;
}): Promise<boolean> {
  const { db, runId, schemas, runs, verdictLeft, before } = run;
  const directLeft = [
    ...(await preparedWithPrefix(db.urlA, `${directGidPrefix}${runId}:`)),
    ...(await preparedWithPrefix(db.urlB, `${directGidPrefix}${runId}:`)),
  ];
  const totalAfter = (await totalBalance(db.urlA)) + (await totalBalance(db.urlB));
  const movedFound = (await totalBalance(db.urlB)) - before.b;

  let ok = true;
  const conserved = totalAfter === before.total;
  ok &&= conserved;
  say(
    `money: ${before.total} before, ${totalAfter} after across both databases: ` +
      (conserved ? "conserved" : "NOT CONSERVED"),
  );
  const movedConfirmed = runs.reduce((sum, m) => sum + BigInt(m.scenario.movedAtoB()), 0n);
  const crossErrors = runs
    .filter((m) => /^[AM]/.test(m.scenario.id))
    .reduce((sum, m) => sum + m.result.errors, 0);
  const movedExact = movedFound === movedConfirmed;
  if (crossErrors === 0) ok &&= movedExact;
  say(
    `moved verdict_a → verdict_b: ${movedConfirmed} by confirmed commits, ${movedFound} found ` +
      (movedExact
        ? "(equal)"
        : crossErrors > 0
          ? `(differs; ${crossErrors} transfers failed, some possibly after committing)`
          : "(MISMATCH)"),
  );
  if (verdictLeft.length > 0) {
    ok = false;
    say(
      `Verdict left ${verdictLeft.length} branches prepared: ${verdictLeft.slice(0, 5).join(", ")}`,
    );
    const rollBack = "roll these back before the next run";
    say(
      schemas.length > 0
        ? `schema ${schemas.join(", ")} kept for inspection; ${rollBack}`
        : rollBack,
    );
  } else {
    for (const schema of schemas) {
      for (const url of [db.urlA, db.urlB]) await dropSchema(url, schema);
    }
  }
  if (directLeft.length > 0) {
    ok = false;
    say(`the direct client left ${directLeft.length} prepared: rolling them back`);
    for (const url of [db.urlA, db.urlB]) await rollBackStaleDirect(url);
  }
  return ok;
}
