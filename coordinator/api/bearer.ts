/** Bearer tokens: read from the Authorization header, compared by digest in constant time. */
import { hash, timingSafeEqual } from "node:crypto";

/** The token of `Authorization: Bearer <token>`, or undefined. */
export function bearerOf(header: string | undefined): string | undefined {
  return /^Bearer (.+)$/.exec(header ?? "")?.[1];
}

/** One-shot: no Hash object per request (crypto.hash, Node ≥ 20.12). */
export function secretDigest(secret: string): Buffer {
  return hash("sha256", secret, "buffer");
}

/**
 * Whether `given` is the secret of `digest`. Digests are compared, in constant time, so that a
 * token cannot be guessed byte by byte (nor its length learned).
 */
export function matchesDigest(given: string, digest: Buffer): boolean {
  return timingSafeEqual(secretDigest(given), digest);
}
