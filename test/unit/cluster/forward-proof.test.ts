/**
 * The proof a standby attaches to a forwarded call (coordinator/cluster/forward-proof.ts).
 * Proves: a proof checks with the secret that made it; changing the method, path, term, time
 * or body digest, or the secret, fails it; a proof outside the skew window fails, one at its
 * edge passes; malformed headers fail; and the body check passes the signed body through
 * unchanged and fails any other body at its end.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { describe, test } from "node:test";
import {
  checkForward,
  digestCheckingStream,
  signForward,
  type ForwardedCall,
} from "../../../coordinator/cluster/forward-proof.js";

const secret = Buffer.from("k3J9-vQx_Lm2Zp8Rt6Wy4Nb1");
const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const call: ForwardedCall = {
  method: "POST",
  url: "/v1/transactions/x1/commit?wait=1",
  term: "7",
  bodySha256: sha("{}"),
};
const nowMs = 1_700_000_000_000;
const skewMs = 30_000;

describe("forward proof", () => {
  test("checks with the secret that made it", () => {
    const proof = signForward(secret, call, nowMs);
    assert.match(proof, /^v1:1700000000000:[0-9a-f]{64}$/);
    assert.deepEqual(checkForward(secret, call, proof, nowMs, skewMs), { ok: true });
  });

  test("fails when any covered field or the secret changes", () => {
    const proof = signForward(secret, call, nowMs);
    const changed: ForwardedCall[] = [
      { ...call, method: "GET" },
      { ...call, url: "/v1/transactions/x1/abort?wait=1" },
      { ...call, url: "/v1/transactions/x1/commit" },
      { ...call, term: "8" },
      { ...call, bodySha256: sha('{"a":1}') },
    ];
    for (const c of changed) assert.equal(checkForward(secret, c, proof, nowMs, skewMs).ok, false);
    const other = Buffer.from("another-secret-of-24-chars");
    assert.equal(checkForward(other, call, proof, nowMs, skewMs).ok, false);
    const retimed = proof.replace(":1700000000000:", ":1700000000001:");
    assert.equal(checkForward(secret, call, retimed, nowMs, skewMs).ok, false);
  });

  test("holds to the skew window, both ways", () => {
    for (const sentAtMs of [nowMs - skewMs, nowMs + skewMs]) {
      const proof = signForward(secret, call, sentAtMs);
      assert.equal(checkForward(secret, call, proof, nowMs, skewMs).ok, true);
    }
    for (const sentAtMs of [nowMs - skewMs - 1, nowMs + skewMs + 1]) {
      const proof = signForward(secret, call, sentAtMs);
      assert.equal(checkForward(secret, call, proof, nowMs, skewMs).ok, false);
    }
  });

  test("refuses malformed proofs and a missing body digest", () => {
    const proof = signForward(secret, call, nowMs);
    for (const bad of [undefined, "", "v2" + proof.slice(2), proof.toUpperCase(), proof + "0"]) {
      assert.equal(checkForward(secret, call, bad, nowMs, skewMs).ok, false, String(bad));
    }
    assert.equal(checkForward(secret, { ...call, bodySha256: "" }, proof, nowMs, skewMs).ok, false);
  });

  test("the body check passes the signed body and fails any other at its end", async () => {
    const mismatch = () => new Error("body changed");
    const same = Readable.from([Buffer.from("{"), Buffer.from("}")]).pipe(
      digestCheckingStream(sha("{}"), mismatch),
    );
    assert.equal(await text(same), "{}");
    const other = Readable.from([Buffer.from("[]")]).pipe(
      digestCheckingStream(sha("{}"), mismatch),
    );
    await assert.rejects(text(other), /body changed/);
  });
});
