/**
 * The rule a bearer secret must meet (docs/configuration.md, "Secrets"): at least
 * `secretCharsMin` characters, all visible ASCII (no spaces: a header trims them), and at least
 * `secretDistinctCharsMin` distinct characters. This refuses the guessable ones (16 spaces,
 * one character repeated, a short pattern repeated); 24 random bytes in base64 always pass.
 */
export const secretCharsMin = 16;
export const secretDistinctCharsMin = 8;

const visibleAscii = /^[\x21-\x7e]+$/;

/** Why `secret` is too weak to be a bearer secret, or undefined when it is acceptable. */
export function weakSecretProblem(secret: string): string | undefined {
  if (secret.length < secretCharsMin) return `shorter than ${secretCharsMin} characters`;
  if (!visibleAscii.test(secret)) {
    return "must be visible ASCII characters only (no spaces or control characters)";
  }
  const distinct = new Set(secret).size;
  if (distinct < secretDistinctCharsMin) {
    return (
      `only ${distinct} distinct characters (at least ${secretDistinctCharsMin}): ` +
      "generate one, e.g. `openssl rand -base64 24`"
    );
  }
  return undefined;
}

/** Loopback listen hosts: what the `local-demo` profile may bind. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === "localhost" || h === "::1" || h === "[::1]" || /^127(\.\d{1,3}){3}$/.test(h);
}
