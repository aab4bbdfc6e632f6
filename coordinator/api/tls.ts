/**
 * HTTPS for the API and the console (docs/tls.md): the certificate, key and CA files, read at
 * start and again on SIGHUP, and what the listener asks of its clients' certificates.
 * `require` refuses a connection without a certificate signed by the CA during the handshake;
 * `request` takes connections without one but closes those presenting one the CA did not
 * sign. Neither replaces the bearer token: every route still checks it.
 */
import { readFile } from "node:fs/promises";
import type { ServerOptions } from "node:https";
import { Server as TlsServer, type TLSSocket } from "node:tls";
import type { TlsConfig } from "../config/schema.js";

/** The PEM contents of a `node.tls` block's files. */
export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca?: Buffer;
}

export type ClientCertificateMode = TlsConfig["clientCertificate"];

/** What the API's listener needs to serve HTTPS. */
export interface ListenerTls {
  readonly files: TlsFiles;
  readonly clientCertificate: ClientCertificateMode;
}

/** Reads the files a `node.tls` block names; a missing or unreadable one names its field. */
export async function readTlsFiles(tls: TlsConfig): Promise<TlsFiles> {
  const read = async (field: string, path: string) => {
    try {
      return await readFile(path);
    } catch (e) {
      throw new Error(`node.tls.${field} ${path}: ${(e as Error).message}`, { cause: e });
    }
  };
  const [cert, key, ca] = await Promise.all([
    read("certFile", tls.certFile),
    read("keyFile", tls.keyFile),
    tls.caFile === undefined ? undefined : read("caFile", tls.caFile),
  ]);
  return { cert, key, ...(ca === undefined ? {} : { ca }) };
}

/** Options of `https.createServer` for the API's listener. */
export function serverTlsOptions(tls: ListenerTls): ServerOptions {
  return {
    ...tls.files,
    requestCert: tls.clientCertificate !== "off",
    rejectUnauthorized: tls.clientCertificate === "require",
  };
}

/**
 * In `request` mode Node accepts any client certificate (it only asks for one): a connection
 * that presented one the CA does not verify is closed before any request is read.
 */
export function refuseUnverifiedCertificates(server: TlsServer): void {
  server.on("secureConnection", (socket: TLSSocket) => {
    if (socket.authorized) return;
    if (Object.keys(socket.getPeerCertificate()).length > 0) socket.destroy();
  });
}

/**
 * New connections use the files read again (SIGHUP); connections already open keep the
 * certificate they shook hands with.
 */
export function swapCertificate(server: unknown, files: TlsFiles): void {
  if (!(server instanceof TlsServer)) throw new Error("the API listener does not serve HTTPS");
  server.setSecureContext({ ...files });
}
