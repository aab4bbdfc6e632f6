/**
 * TLS to the servers Verdict depends on (docs/tls-backends.md), defined once for every back
 * end: the PEM files a connection trusts and presents, how they are read, and how a refused
 * handshake is told apart from an unreachable server. A server whose certificate is not
 * trusted is a configuration problem (or an impostor): retrying the same handshake cannot
 * help, so `start` refuses it at once instead of waiting for the server "to come back".
 *
 * Neutral: participants and the etcd log both import it (eslint.config.js).
 */
import { readFileSync } from "node:fs";
import { z } from "zod";

/**
 * PEM files of one TLS connection. The server's certificate is always verified against
 * `caFile`, and its name against the host connected to (or `serverName`): there is no
 * setting that turns verification off.
 */
export const tlsFilesSchema = z
  .strictObject({
    /** CA certificate(s) the server's certificate must chain to. */
    caFile: z.string().min(1).max(4096),
    /** Client certificate, for servers that authenticate clients by certificate. */
    certFile: z.string().min(1).max(4096).optional(),
    /** The client certificate's private key (unencrypted PEM). */
    keyFile: z.string().min(1).max(4096).optional(),
    /** The name the server's certificate must carry, when it differs from the host connected to. */
    serverName: z.string().min(1).max(253).optional(),
  })
  .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
    message: "give certFile and keyFile together, or neither",
  });

export type TlsFilesConfig = z.output<typeof tlsFilesSchema>;

/** The files' contents, as Node's `tls.connect` (and grpc's `createSsl`) take them. */
export interface TlsMaterial {
  readonly ca: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly servername?: string;
}

/** Largest PEM file read: a CA bundle is tens of KiB; anything far larger is the wrong file. */
const pemBytesMax = 1024 * 1024;

/**
 * Reads the configured files once, at construction; throws an Error naming `who`, the field
 * and the file when one cannot be read or holds no PEM block (a typo must not start a node
 * that then cannot connect).
 */
export function readTlsFiles(tls: TlsFilesConfig, who: string): TlsMaterial {
  const read = (field: string, file: string, block: RegExp): Buffer => {
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch (e) {
      throw new Error(`${who}: cannot read tls.${field} ${file}: ${(e as Error).message}`);
    }
    if (data.length > pemBytesMax || !block.test(data.toString("latin1"))) {
      throw new Error(`${who}: tls.${field} ${file} is not a PEM file of the expected kind`);
    }
    return data;
  };
  const certificate = /-----BEGIN CERTIFICATE-----/;
  return {
    ca: read("caFile", tls.caFile, certificate),
    ...(tls.certFile === undefined ? {} : { cert: read("certFile", tls.certFile, certificate) }),
    ...(tls.keyFile === undefined
      ? {}
      : { key: read("keyFile", tls.keyFile, /-----BEGIN [A-Z ]*PRIVATE KEY-----/) }),
    ...(tls.serverName === undefined ? {} : { servername: tls.serverName }),
  };
}

/**
 * OpenSSL's verification codes (Node's `err.code`) for a server certificate that is not
 * trusted, plus Node's own name check: each means the handshake reached the server and
 * was refused by us.
 */
const untrustedCodes = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_SIGNATURE_FAILURE",
  "CERT_NOT_YET_VALID",
  "CERT_HAS_EXPIRED",
  "CERT_REVOKED",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "INVALID_CA",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/**
 * Why a connection was refused by TLS, when `err` (or one of its causes) says so: the
 * server's certificate is not trusted, or the server refused ours (an alert during the
 * handshake). Undefined for every other failure. Looks at most 8 causes deep.
 */
export function tlsRefusal(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 8 && e instanceof Error; depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === "string" && untrustedCodes.has(code)) {
      return `the server's certificate is not trusted (${code}: ${e.message}); check tls.caFile and that the certificate names the host (or tls.serverName)`;
    }
    if (typeof code === "string" && /^ERR_SSL_.*ALERT/.test(code)) {
      return `the server refused the TLS handshake (${code}: ${e.message}); check tls.certFile and tls.keyFile`;
    }
    e = e.cause;
  }
  return undefined;
}
