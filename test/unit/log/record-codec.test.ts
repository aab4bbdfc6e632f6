/**
 * Proves the on-disk frame byte-exact: the header layout of a known record, that every
 * proper prefix reads as incomplete (a torn write), that any single flipped byte is
 * caught, and that the payload size limit is enforced on read.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
import {
  FRAME_HEADER_BYTES,
  FrameKind,
  decodeFrame,
  encodeFrame,
} from "../../../coordinator/log/record-codec.js";

const frame = {
  kind: FrameKind.entry,
  index: 258,
  term: 7,
  payload: new Uint8Array([0xab, 0xcd, 0xef]),
};

describe("record codec", () => {
  test("encodes the documented layout, little-endian", () => {
    const bytes = encodeFrame(frame);
    const body = [
      ...[3, 0, 0, 0], // payloadBytes
      1, // version
      FrameKind.entry,
      ...[0, 0], // reserved
      ...[7, 0, 0, 0], // term
      ...[2, 1, 0, 0, 0, 0, 0, 0], // index 258
      ...[0xab, 0xcd, 0xef],
    ];
    const crc = crc32(new Uint8Array(body));
    assert.deepEqual(
      [...bytes],
      [crc & 0xff, (crc >>> 8) & 0xff, (crc >>> 16) & 0xff, crc >>> 24, ...body],
    );
    assert.equal(bytes.byteLength, FRAME_HEADER_BYTES + 3);
  });

  test("round-trips, and every proper prefix is incomplete", () => {
    const bytes = encodeFrame(frame);
    const whole = decodeFrame(bytes, 0, 16);
    assert.equal(whole.status, "ok");
    assert.ok(whole.status === "ok");
    assert.deepEqual(
      { ...whole.frame, payload: [...whole.frame.payload] },
      { ...frame, payload: [...frame.payload] },
    );
    assert.equal(whole.nextOffset, bytes.byteLength);
    for (let cut = 0; cut < bytes.byteLength; cut++) {
      assert.equal(
        decodeFrame(bytes.subarray(0, cut), 0, 16).status,
        "incomplete",
        `cut at ${cut}`,
      );
    }
  });

  test("any flipped byte is detected", () => {
    const bytes = encodeFrame(frame);
    for (let at = 0; at < bytes.byteLength; at++) {
      const damaged = bytes.slice();
      damaged[at] = (damaged[at] ?? 0) ^ 0x01;
      assert.notEqual(decodeFrame(damaged, 0, 16).status, "ok", `flip at ${at}`);
    }
  });

  test("a length over the maximum is invalid before any CRC is computed", () => {
    const result = decodeFrame(encodeFrame(frame), 0, 2);
    assert.deepEqual(result, { status: "invalid", reason: "length 3 over the maximum 2" });
  });
});
