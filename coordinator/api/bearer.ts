/** Bearer tokens: read from the Authorization header, compared by digest in constant time. */
import { createHash, timingSafeEqual } from "node:crypto";

/** The token of `Authorization: Bearer <token>`, or undefined. */
export function bearerOf(header: string | undefined): string | undefined {
  return /^Bearer (.+)$/.exec(header ?? "")?.[1];
}

export function secretDigest(secret: string): Buffer {
  return createHash("sha256").update(secret).digest();
}

/**
 * Whether `given` is the secret of `digest`. Digests are compared, in constant time, so that a
 * token cannot be guessed byte by byte (nor its length learned).
 */
export function matchesDigest(given: string, digest: Buffer): boolean {
  return timingSafeEqual(secretDigest(given), digest);
}
