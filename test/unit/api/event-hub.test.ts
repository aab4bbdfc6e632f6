/**
 * The EventHub (coordinator/api/console/events.ts), with a fake clock and fake sockets: the
 * first frame goes out at subscribe; a feed's frames go out on ticks, a heartbeat comment only
 * after `heartbeatMs` without a frame; a feed that ends closes its stream and frees its slot;
 * the bounds per owner and in all are refused by name and freed by a close; a socket whose
 * buffer is full is not asked for its next frame until it drains (nothing queues); closeAll
 * ends every stream and stops the timer.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { ServerResponse } from "node:http";
import { afterEach, describe, test } from "node:test";
import { EventHub, logChangeFeed, type Feed } from "../../../coordinator/api/console/events.js";

class FakeResponse extends EventEmitter {
  written: string[] = [];
  ended = false;
  writableNeedDrain = false;
  write(frame: string): boolean {
    this.written.push(frame);
    return true;
  }
  end(): void {
    this.ended = true;
    this.emit("close");
  }
}

let nowMs = 0;
const hubs: EventHub[] = [];
function hub(subscribersMax = 3, perOwnerMax = 2): EventHub {
  const h = new EventHub({
    subscribersMax,
    perOwnerMax,
    pollMs: 60_000,
    heartbeatMs: 1_000,
    nowMs: () => nowMs,
  });
  hubs.push(h);
  return h;
}
afterEach(() => {
  for (const h of hubs.splice(0)) h.closeAll();
});

/** A feed that sends what the test pushes, and ends when told. */
function scripted(): Feed & { frames: string[]; endNext: boolean; asked: number } {
  const f = {
    frames: [] as string[],
    endNext: false,
    asked: 0,
    next() {
      f.asked++;
      const frame = f.frames.shift();
      return { ...(frame === undefined ? {} : { frame }), end: f.endNext };
    },
  };
  return f;
}

const tick = (h: EventHub) => (h as unknown as { tick(): void }).tick();
const res = () => new FakeResponse();
const asRes = (r: FakeResponse) => r as unknown as ServerResponse;

describe("EventHub", () => {
  test("first frame at once, frames on ticks, heartbeat only when quiet", () => {
    const h = hub();
    const r = res();
    const feed = scripted();
    feed.frames.push("a");
    h.subscribe(asRes(r), "t1", feed);
    assert.deepEqual(r.written, ["a"]);
    nowMs += 500;
    tick(h);
    assert.deepEqual(r.written, ["a"], "nothing new, not yet a heartbeat");
    nowMs += 600;
    tick(h);
    assert.deepEqual(r.written, ["a", ": heartbeat\n\n"]);
    feed.frames.push("b");
    nowMs += 100;
    tick(h);
    assert.deepEqual(r.written, ["a", ": heartbeat\n\n", "b"]);
  });

  test("a feed that ends closes its stream and frees its slot", () => {
    const h = hub(1, 1);
    const r = res();
    const feed = scripted();
    feed.frames.push("last");
    feed.endNext = true;
    h.subscribe(asRes(r), "t1", feed);
    assert.deepEqual(r.written, ["last"]);
    assert.ok(r.ended);
    assert.equal(h.size, 0);
    assert.equal(h.refusal("t1"), undefined);
  });

  test("bounds per owner and in all, freed by a close", () => {
    const h = hub(3, 2);
    const a1 = res();
    h.subscribe(asRes(a1), "a", scripted());
    h.subscribe(asRes(res()), "a", scripted());
    assert.equal(h.refusal("a"), "perOwnerMax");
    assert.equal(h.refusal("b"), undefined);
    h.subscribe(asRes(res()), "b", scripted());
    assert.equal(h.refusal("b"), "subscribersMax");
    a1.emit("close");
    assert.equal(h.refusal("a"), undefined);
    assert.equal(h.size, 2);
  });

  test("a full socket is not asked until it drains; the feed then answers the newest", () => {
    const h = hub();
    const r = res();
    let index = 1;
    h.subscribe(
      asRes(r),
      "t1",
      logChangeFeed(() => index),
    );
    assert.equal(r.written.length, 1);
    r.writableNeedDrain = true;
    index = 2;
    tick(h);
    index = 3;
    nowMs += 5_000;
    tick(h);
    assert.equal(r.written.length, 1, "nothing written to a full socket, not even a heartbeat");
    r.writableNeedDrain = false;
    tick(h);
    assert.deepEqual(r.written.slice(1), ['event: change\ndata: {"appliedIndex":3}\n\n']);
  });

  test("closeAll ends every stream", () => {
    const h = hub();
    const rs = [res(), res()];
    for (const r of rs) h.subscribe(asRes(r), "t1", scripted());
    h.closeAll();
    assert.ok(rs.every((r) => r.ended));
    assert.equal(h.size, 0);
  });
});
