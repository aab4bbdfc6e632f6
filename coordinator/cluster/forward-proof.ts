/**
 * The proof a standby attaches to a call it forwards (docs/tls.md, "Forwarding between
 * nodes"): an HMAC-SHA256, keyed by the cluster's forwarding secret, over the method, the
 * path and query, the term the call targets, the time it was sent and the SHA-256 of its
 * body. The leader recomputes it and compares in constant time; a proof older or newer than
 * the skew window, or over anything else, is refused. Only a call with a valid proof is
 * treated as forwarded: a node's network address proves nothing.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { Transform, type TransformCallback } from "node:stream";
import { weakSecretProblem } from "../config/secrets.js";

/** `v1:<sent at, ms since the epoch>:<hex HMAC>`. */
export const FORWARD_PROOF_HEADER = "verdict-forward-proof";
/** The SHA-256 (hex) of the body the standby sent; the leader checks it as the body arrives. */
export const FORWARD_BODY_HEADER = "verdict-forward-body-sha256";

const version = "v1";
const proofForm = /^v1:(\d{1,15}):([0-9a-f]{64})$/;
const digestForm = /^[0-9a-f]{64}$/;

/** What a proof covers. */
export interface ForwardedCall {
  readonly method: string;
  /** The path and query as sent. */
  readonly url: string;
  /** The `verdict-target-term` header's value. */
  readonly term: string;
  /** Hex SHA-256 of the body (of nothing when there is none). */
  readonly bodySha256: string;
}

export type ProofCheck = { readonly ok: true } | { readonly ok: false; readonly why: string };

function mac(secret: Buffer, call: ForwardedCall, sentAtMs: number): Buffer {
  // Newline-separated: none of the fields can hold one (HTTP forbids it in a request line).
  const text = [version, call.method, call.url, call.term, String(sentAtMs), call.bodySha256];
  return createHmac("sha256", secret).update(text.join("\n")).digest();
}

/** The header value proving `call` came from a node that holds `secret`. */
export function signForward(secret: Buffer, call: ForwardedCall, sentAtMs: number): string {
  return `${version}:${sentAtMs}:${mac(secret, call, sentAtMs).toString("hex")}`;
}

/** Whether `proof` is a valid proof of `call`, sent within `skewMs` of `nowMs`. */
export function checkForward(
  secret: Buffer,
  call: ForwardedCall,
  proof: string | undefined,
  nowMs: number,
  skewMs: number,
): ProofCheck {
  const m = proofForm.exec(proof ?? "");
  if (m === null) return { ok: false, why: "no proof, or not of the form v1:<ms>:<hmac>" };
  if (!digestForm.test(call.bodySha256)) return { ok: false, why: "no body digest" };
  const sentAtMs = Number(m[1]);
  if (Math.abs(nowMs - sentAtMs) > skewMs) {
    return { ok: false, why: `sent ${nowMs - sentAtMs} ms from now, outside ±${skewMs} ms` };
  }
  const given = Buffer.from(m[2] ?? "", "hex");
  if (!timingSafeEqual(given, mac(secret, call, sentAtMs))) {
    return { ok: false, why: "the proof does not match (another secret, or a changed call)" };
  }
  return { ok: true };
}

/**
 * Passes a forwarded body through unchanged and fails the stream (with `mismatch()`) at its
 * end if its SHA-256 is not the one the proof covered.
 */
export function digestCheckingStream(expectedSha256: string, mismatch: () => Error): Transform {
  const hash = createHash("sha256");
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done: TransformCallback) {
      done(hash.digest("hex") === expectedSha256 ? null : mismatch());
    },
  });
}

/** The forwarding secret: the file's content, trimmed, held to the rule of every secret. */
export async function readForwardSecret(path: string): Promise<Buffer> {
  let text: string;
  try {
    text = (await readFile(path, "utf8")).trim();
  } catch (e) {
    throw new Error(`cluster.forwardSecretFile ${path}: ${(e as Error).message}`, { cause: e });
  }
  const weak = weakSecretProblem(text);
  if (weak !== undefined) throw new Error(`cluster.forwardSecretFile ${path} is weak: ${weak}`);
  return Buffer.from(text, "utf8");
}
