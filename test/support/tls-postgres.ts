/**
 * A throwaway PostgreSQL server that accepts TLS only (`ssl = on`, `hostssl` lines alone in
 * pg_hba.conf), its certificate signed by a test CA, in a temporary folder on a free port.
 * Like deploy/local/postgres.sh it runs as the ordinary user verdictpg (initdb and pg_ctl
 * refuse root). Roles: `verdict` (bookkeeping, owns the database) and `verdict_stmt`
 * (statements), both with `password`. The shared server of deploy/local is never touched.
 */
import { execFile } from "node:child_process";
import { chmod, chown, copyFile, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort } from "./free-port.js";
import type { TestCa } from "./tls-ca.js";

const run = promisify(execFile);
const osUser = "verdictpg";

export interface TlsPostgres {
  readonly port: number;
  readonly database: string;
  readonly password: string;
  /** `postgres://<user>:<password>@127.0.0.1:<port>/<database>`, without TLS parameters. */
  url(user?: string): string;
  dispose(): Promise<void>;
}

async function binDir(): Promise<string> {
  const versions = (await readdir("/usr/lib/postgresql")).sort(
    (a, b) => Number.parseFloat(a) - Number.parseFloat(b),
  );
  const newest = versions.at(-1);
  if (newest === undefined) throw new Error("no PostgreSQL under /usr/lib/postgresql");
  return `/usr/lib/postgresql/${newest}/bin`;
}

async function asUser(file: string, args: readonly string[]): Promise<string> {
  const { stdout } = await run("runuser", ["-u", osUser, "--", file, ...args], {
    timeout: 60_000,
  });
  return stdout;
}

export async function startTlsPostgres(ca: TestCa): Promise<TlsPostgres> {
  const bin = await binDir();
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), "verdict-pg-tls-"));
  const data = path.join(dir, "data");
  const { uid, gid } = await ownerIds();
  await chown(dir, uid, gid);
  await asUser(`${bin}/initdb`, ["-D", data, "-U", osUser, "--auth-local=trust", "-E", "UTF8"]);
  // The server refuses a key readable by others, or owned by someone else.
  for (const [from, to] of [
    [ca.serverCertFile, "server.crt"],
    [ca.serverKeyFile, "server.key"],
    [ca.caFile, "root.crt"],
  ] as const) {
    await copyFile(from, path.join(data, to));
    await chown(path.join(data, to), uid, gid);
    await chmod(path.join(data, to), 0o600);
  }
  await writeFile(
    path.join(data, "postgresql.auto.conf"),
    [
      "listen_addresses = '127.0.0.1'",
      `port = ${port}`,
      `unix_socket_directories = '${dir}'`,
      "ssl = on",
      "ssl_cert_file = 'server.crt'",
      "ssl_key_file = 'server.key'",
      "ssl_ca_file = 'root.crt'",
      "max_prepared_transactions = 20",
      "max_connections = 40",
      "shared_buffers = 16MB",
      // A throwaway server: its durability is not what these tests prove.
      "fsync = off",
      "",
    ].join("\n"),
  );
  await writeFile(
    path.join(data, "pg_hba.conf"),
    "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
  );
  await asUser(`${bin}/pg_ctl`, [
    "-D",
    data,
    "-l",
    path.join(dir, "log"),
    "-w",
    "-t",
    "60",
    "start",
  ]);
  const password = "tls-test-password-7f3a";
  const psql = (db: string, sql: string) =>
    asUser(`${bin}/psql`, [
      "-h",
      dir,
      "-p",
      String(port),
      "-d",
      db,
      "-v",
      "ON_ERROR_STOP=1",
      "-qAtc",
      sql,
    ]);
  const database = "verdict_tls";
  await psql("postgres", `create role verdict login password '${password}'`);
  await psql("postgres", `create role verdict_stmt login password '${password}'`);
  await psql("postgres", `create database ${database} owner verdict`);
  // So that a test can see the statement role's sessions (and whether they use TLS).
  await psql("postgres", "grant pg_read_all_stats to verdict");
  await psql(database, "alter role verdict set search_path = public");
  await psql(
    database,
    "alter default privileges for role verdict in schema public grant select, insert, update, delete on tables to verdict_stmt",
  );
  return {
    port,
    database,
    password,
    url: (user = "verdict") => `postgres://${user}:${password}@127.0.0.1:${port}/${database}`,
    async dispose() {
      await asUser(`${bin}/pg_ctl`, ["-D", data, "-m", "immediate", "-w", "stop"]).catch(
        () => undefined,
      );
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function ownerIds(): Promise<{ uid: number; gid: number }> {
  const { stdout: uid } = await run("id", ["-u", osUser]);
  const { stdout: gid } = await run("id", ["-g", osUser]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}
