/**
 * The SDK's Server-Sent Events parser (client/events.ts), byte-exact as a codec: a stream of
 * events, comments and field variants (LF, CRLF and CR line ends, no space after the colon,
 * multi-line data, an unnamed event) gives the same events however it is split, at every
 * offset and one character at a time; a block without data is no event; an event over the
 * bound throws.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SseParser, eventCharsMax, type SseEvent } from "../../../client/events.js";

const stream =
  ": heartbeat\n\n" +
  'event: state\ndata: {"state":"active"}\n\n' +
  'event:state\r\ndata:{"state":"prepared"}\r\n\r\n' +
  "data: line one\ndata: line two\n\n" +
  "event: empty\n\n" +
  ': comment\nevent: state\rdata: {"state":"committed"}\r\r';
const expected: SseEvent[] = [
  { event: "state", data: '{"state":"active"}' },
  { event: "state", data: '{"state":"prepared"}' },
  { event: "message", data: "line one\nline two" },
  { event: "state", data: '{"state":"committed"}' },
];

function parseIn(chunks: readonly string[]): SseEvent[] {
  const parser = new SseParser();
  return chunks.flatMap((c) => parser.push(c));
}

describe("SseParser", () => {
  test("the whole stream at once", () => {
    assert.deepEqual(parseIn([stream]), expected);
  });

  test("split at every offset", () => {
    for (let i = 0; i <= stream.length; i++) {
      assert.deepEqual(parseIn([stream.slice(0, i), stream.slice(i)]), expected, `split at ${i}`);
    }
  });

  test("one character at a time", () => {
    assert.deepEqual(parseIn([...stream]), expected);
  });

  test("an event over the bound throws; one under it does not", () => {
    const parser = new SseParser();
    assert.deepEqual(parser.push(`data: ${"x".repeat(1000)}\n\n`).length, 1);
    assert.throws(() => parser.push("data: " + "x".repeat(eventCharsMax)), /longer than/);
  });
});
