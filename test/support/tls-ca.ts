/**
 * A throwaway certificate authority for the back-end TLS tests, made with `openssl` into a
 * temporary folder: a CA, a server certificate for 127.0.0.1 and localhost signed by it, a
 * client certificate signed by it, and an unrelated second CA (the "wrong CA" a client must
 * refuse). Keys are unencrypted PEM (PKCS#8), valid for one day.
 */
import { execFile } from "node:child_process";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface TestCa {
  readonly dir: string;
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  /** A CA that signed nothing here: trusting only it must refuse the server. */
  readonly otherCaFile: string;
  dispose(): Promise<void>;
}

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  await run("openssl", args, { cwd: dir, timeout: 30_000 });
}

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "1",
    "-subj",
    `/CN=${name}`,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
  ]);
}

/** A key and a certificate signed by `ca.crt`, with the given extensions. */
async function makeLeaf(dir: string, name: string, extensions: string): Promise<void> {
  await writeFile(path.join(dir, `${name}.ext`), extensions);
  await openssl(dir, [
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-subj",
    `/CN=${name}`,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
  ]);
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.crt`,
  ]);
}

export async function createTestCa(): Promise<TestCa> {
  const dir = await mkdtemp(path.join(tmpdir(), "verdict-tls-"));
  // Servers started as another user (PostgreSQL runs as an ordinary user) read from here.
  await chmod(dir, 0o755);
  await makeCa(dir, "ca");
  await makeCa(dir, "other-ca");
  await makeLeaf(
    dir,
    "server",
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
  );
  await makeLeaf(dir, "client", "extendedKeyUsage=clientAuth\n");
  const f = (name: string) => path.join(dir, name);
  return {
    dir,
    caFile: f("ca.crt"),
    serverCertFile: f("server.crt"),
    serverKeyFile: f("server.key"),
    clientCertFile: f("client.crt"),
    clientKeyFile: f("client.key"),
    otherCaFile: f("other-ca.crt"),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
