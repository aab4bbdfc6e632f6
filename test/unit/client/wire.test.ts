// Proves the SDK's own wire types (client/wire.ts) are the API contract: each equals the
// type the coordinator's schemas infer — assignable both ways, and with every optional
// field present on both sides — so the SDK can ship without the coordinator and still not
// drift from it. tsc checks the assertions below; the test runs tsc over this one file so
// that a drift fails the test run as well as the typecheck.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type * as contract from "../../../coordinator/api/contract/schemas.js";
import type { ErrorCode as ContractErrorCode } from "../../../coordinator/api/contract/errors.js";
import type * as wire from "../../../client/wire.js";
import { repoDir, tscErrors } from "./run-tsc.js";

type Mutual<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Mutually assignable, also once every optional field is required (none missing). */
type Same<A, B> = Mutual<A, B> extends true ? Mutual<Required<A>, Required<B>> : false;
type Assert<T extends true> = T;

export type WireChecks = [
  Assert<Same<wire.ErrorCode, ContractErrorCode>>,
  Assert<Same<wire.TransactionState, contract.TransactionState>>,
  Assert<Same<wire.BeginRequest, contract.BeginRequest>>,
  Assert<Same<wire.EnlistRequest, contract.EnlistRequest>>,
  Assert<Same<wire.PgStatementsBranch, contract.PgStatementsBranch>>,
  Assert<Same<wire.PgServicePreparedBranch, contract.PgServicePreparedBranch>>,
  Assert<Same<wire.RedisBranch, contract.RedisBranch>>,
  Assert<Same<wire.KafkaBranch, contract.KafkaBranch>>,
  Assert<Same<wire.Statement, contract.Statement>>,
  Assert<Same<wire.SqlParam, contract.SqlParam>>,
  Assert<Same<wire.RedisOp, contract.RedisOp>>,
  Assert<Same<wire.RedisPrecondition, contract.RedisPrecondition>>,
  Assert<Same<wire.KafkaMessage, contract.KafkaMessage>>,
  Assert<Same<wire.AbortReason, contract.AbortReason>>,
  Assert<Same<wire.BranchView, contract.BranchView>>,
  Assert<Same<wire.TransactionView, contract.TransactionView>>,
  Assert<Same<wire.EnlistResponse, contract.EnlistResponse>>,
];

test("tsc finds the SDK's wire types equal to the contract's", { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "verdict-wire-"));
  try {
    const config = join(dir, "tsconfig.json");
    await writeFile(
      config,
      JSON.stringify({
        extends: join(repoDir, "tsconfig.json"),
        compilerOptions: { noEmit: true, typeRoots: [join(repoDir, "node_modules/@types")] },
        include: [],
        files: [fileURLToPath(import.meta.url)],
      }),
    );
    assert.equal(await tscErrors(config), "", "tsc reported errors");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
