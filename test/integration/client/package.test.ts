/**
 * Proves `@verdict/client` is a package a service can depend on: `npm pack` in client/
 * builds it and packs only its own compiled files (no coordinator/ or participants/ module,
 * and every import of its .js and .d.ts files resolves inside the package or to node:
 * built-ins); a throwaway project with nothing but that package in node_modules imports it
 * by name, begins a transaction through it against a scripted HTTP server, and type-checks a
 * consumer with tsc against its .d.ts alone (no @types/node, no repository file) — while a
 * consumer that misuses the API fails to type-check, so the types are really there.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { importGraph } from "../../unit/client/import-graph.js";
import { repoDir, tscErrors } from "../../unit/client/run-tsc.js";

const run = promisify(execFile);
let work = "";
/** The throwaway project, and the package as installed in it. */
let project = "";
let installed = "";
let packedFiles: string[] = [];

before(async () => {
  work = await mkdtemp(join(tmpdir(), "verdict-sdk-pack-"));
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", work], {
    cwd: join(repoDir, "client"),
    timeout: 120_000,
  });
  const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  assert.ok(packed !== undefined, "npm pack reported a tarball");
  packedFiles = packed.files.map((f) => f.path);
  project = join(work, "consumer");
  installed = join(project, "node_modules", "@verdict", "client");
  await mkdir(installed, { recursive: true });
  await run("tar", ["-xzf", join(work, packed.filename), "-C", installed, "--strip-components=1"]);
  await writeFile(
    join(project, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }),
  );
});

after(async () => {
  if (work !== "") await rm(work, { recursive: true, force: true });
});

test("the tarball holds package.json and compiled files, nothing of the coordinator", async () => {
  const manifest = JSON.parse(await readFile(join(installed, "package.json"), "utf8")) as Record<
    string,
    unknown
  >;
  assert.equal(manifest.name, "@verdict/client");
  assert.equal(manifest.type, "module");
  assert.deepEqual(manifest.engines, { node: ">=20.19" });
  assert.deepEqual(manifest.exports, {
    ".": { types: "./dist/client/index.d.ts", import: "./dist/client/index.js" },
    "./package.json": "./package.json",
  });
  for (const file of ["dist/client/index.js", "dist/client/index.d.ts"]) {
    assert.ok(packedFiles.includes(file), `${file} is packed`);
  }
  const foreign = packedFiles.filter(
    (f) => f !== "package.json" && !/^dist\/(client|shared)\/.+\.(js|d\.ts)$/.test(f),
  );
  assert.deepEqual(foreign, [], "files that are not the SDK's compiled modules");
});

test("the packed modules and declarations import only each other and node: built-ins", async () => {
  for (const [entry, fileOf] of [
    ["index.js", (spec: string) => spec],
    ["index.d.ts", (spec: string) => spec.replace(/\.js$/, ".d.ts")],
  ] as const) {
    const graph = await importGraph(join(installed, "dist/client", entry), fileOf);
    const outside = graph.modules
      .map((m) => relative(installed, m))
      .filter((m) => m.startsWith("..") || !/^dist\/(client|shared)\//.test(m));
    assert.deepEqual(outside, [], `${entry}: modules outside the package`);
    const packages = graph.packages.filter((p) => !p.startsWith("node:"));
    assert.deepEqual(packages, [], `${entry}: packages other than node: built-ins`);
  }
});

test("a project imports the package by name and begins a transaction through it", async () => {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
    res.writeHead(201, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        xid: "tx-from-package",
        state: "active",
        deadline: "2030-01-01T00:00:00.000Z",
        labels: {},
        branches: [],
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const script = [
      'import * as sdk from "@verdict/client";',
      `const client = new sdk.VerdictClient({ baseUrl: "${url}", token: "t-1" });`,
      "const tx = await client.begin({ timeoutMs: 5000 });",
      'const branch = sdk.pgStatements("pg-a", [sdk.sql("select 1", [], { expectRows: 1 })]);',
      "console.log(JSON.stringify({ xid: tx.xid, branch, exports: Object.keys(sdk).sort() }));",
    ].join("\n");
    await writeFile(join(project, "main.js"), script);
    const { stdout } = await run(process.execPath, ["main.js"], { cwd: project, timeout: 30_000 });
    const out = JSON.parse(stdout) as { xid: string; branch: unknown; exports: string[] };
    assert.equal(out.xid, "tx-from-package");
    assert.deepEqual(out.branch, {
      participant: "pg-a",
      statements: [{ sql: "select 1", expectRows: 1 }],
    });
    for (const name of ["VerdictClient", "runServicePrepared", "OutcomeUnknownError", "redis"]) {
      assert.ok(out.exports.includes(name), `${name} is exported`);
    }
    assert.deepEqual(seen, ["POST /v1/transactions Bearer t-1"]);
  } finally {
    server.close();
  }
});

test("a consumer type-checks against the package's declarations; a misuse does not", async () => {
  const consumer = [
    'import { VerdictClient, TransactionAbortedError, redis, redisOps, runServicePrepared } from "@verdict/client";',
    'import type { PgSession, TransactionView } from "@verdict/client";',
    "export async function pay(client: VerdictClient, db: PgSession): Promise<TransactionView> {",
    "  const { xid } = await client.begin({ timeoutMs: 5000, labels: { order: '42' } });",
    '  await client.enlist(xid, redisOps("redis-main", [redis.incrby("{acct}:7", 10)]));',
    '  await runServicePrepared(client, xid, "pg-a", db, async (s) => { await s.query("select 1"); });',
    "  try {",
    "    return await client.commit(xid);",
    "  } catch (err) {",
    "    if (err instanceof TransactionAbortedError) throw new Error(err.reason?.code);",
    "    throw err;",
    "  }",
    "}",
  ].join("\n");
  const misuse = [
    'import { VerdictClient, sql } from "@verdict/client";',
    "sql(42);",
    'new VerdictClient({ baseUrl: "http://x" });',
  ].join("\n");
  const compilerOptions = {
    target: "ES2022",
    lib: ["ES2022"],
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    noEmit: true,
    types: [],
  };
  await writeFile(join(project, "consumer.ts"), consumer);
  await writeFile(join(project, "misuse.ts"), misuse);
  for (const [name, files] of [
    ["tsconfig.json", ["consumer.ts"]],
    ["tsconfig.misuse.json", ["misuse.ts"]],
  ] as const) {
    await writeFile(join(project, name), JSON.stringify({ compilerOptions, files }));
  }
  assert.equal(await tscErrors(join(project, "tsconfig.json")), "", "the consumer type-checks");
  const errors = await tscErrors(join(project, "tsconfig.misuse.json"));
  assert.match(errors, /misuse\.ts\(2,5\): error TS2345/, "sql(42) is refused");
  assert.match(errors, /misuse\.ts\(3,19\): error TS2345/, "a client without a token is refused");
});
