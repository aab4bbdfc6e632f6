/**
 * TLS and authentication to etcd from the `log` section (docs/tls-backends.md): checked when
 * the configuration loads, read once when the etcd client is made (files, password), and a
 * start that etcd refused explained in words an operator can act on. The password is never
 * logged: it goes to the client and nowhere else.
 */
import { readFileSync } from "node:fs";
import type { Config } from "../config/schema.js";
import type { EtcdSecurity } from "../log/etcd/client.js";
import { readTlsFiles } from "../../shared/tls.js";

type LogSection = Config["log"];

/** What is wrong with `log.tls` / `log.auth`; empty when nothing. */
export function etcdSecurityProblems(log: LogSection): string[] {
  if (log.tls === undefined && log.auth === undefined) return [];
  if (log.kind !== "etcd") return ["log.tls and log.auth apply only with log.kind: etcd"];
  const plain = (log.endpoints ?? []).filter((e) => e.startsWith("http://"));
  if (log.tls !== undefined && plain.length > 0) {
    return [
      `log.tls is set but endpoints ${plain.join(", ")} say http://: use https:// or no scheme`,
    ];
  }
  return [];
}

/** Password files hold one line; anything this long is the wrong file. */
const passwordBytesMax = 4096;

/** Reads the TLS files and the password file; throws an Error naming the field and file. */
export function readEtcdSecurity(log: LogSection): EtcdSecurity {
  const auth = log.auth;
  return {
    ...(log.tls === undefined ? {} : { tls: readTlsFiles(log.tls, "log") }),
    ...(auth === undefined
      ? {}
      : { auth: { username: auth.username, password: authPassword(auth) } }),
  };
}

function authPassword(auth: NonNullable<LogSection["auth"]>): string {
  if (auth.password !== undefined) return auth.password;
  const file = auth.passwordFile ?? "";
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`log.auth.passwordFile ${file}: ${(e as Error).message}`);
  }
  // A trailing newline (echo, most editors) is not part of the password.
  const password = text.replace(/\r?\n$/, "");
  if (password === "" || text.length > passwordBytesMax) {
    throw new Error(`log.auth.passwordFile ${file}: empty, or not a password file`);
  }
  return password;
}

/**
 * The start's error, explained when etcd (or our side of TLS) refused it: grpc reports a
 * failed handshake or login only inside its message text.
 */
export function explainEtcdStartError(e: unknown, endpoints: readonly string[]): Error {
  const message = e instanceof Error ? e.message : String(e);
  const hint = /certificate|SSL|TLS|handshake|wrong version number/i.test(message)
    ? "TLS was refused: check log.tls (caFile must have signed the members' certificates; " +
      "certFile and keyFile are needed when etcd runs with --client-cert-auth)"
    : /authentication failed|invalid auth token|user name is empty|permission denied/i.test(message)
      ? "etcd refused the credentials: check log.auth (username, password or passwordFile) and the user's role"
      : "check that etcd is running and reachable, and log.tls / log.auth match its settings";
  return new Error(`cannot use etcd at ${endpoints.join(", ")}: ${message.trim()} (${hint})`, {
    cause: e,
  });
}
