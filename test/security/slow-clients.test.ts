/**
 * What clients that hold connections, dribble bytes or flood public routes can do to the
 * others (docs/security.md, "API abuse resistance"), on a real node:
 * - 40 connections sending their headers a byte at a time are answered 408 and closed at
 *   the headers timeout, and 20 sending their body slowly at the request timeout; meanwhile
 *   a well-behaved client from another address is served every request within a bound;
 * - an idle keep-alive connection is closed after the keep-alive timeout;
 * - one address cannot hold more than `connectionsPerAddressMax` connections: the rest are
 *   closed on arrival, and another address is still served;
 * - a flood of each unauthenticated route (probes, the OpenAPI document, admin and client
 *   routes without a token) is answered without a server error while the well-behaved
 *   client is served within the bound;
 * - a JSON body nested deeper than `jsonDepthMax` is refused (400 json-too-deep) before it is
 *   parsed, and begins nothing.
 * Attackers bind 127.0.0.2–127.0.0.4; the well-behaved client uses 127.0.0.1.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { raw, startApiNode, type ApiNode } from "../integration/api/harness.js";

const headersTimeoutMs = 1500;
const requestTimeoutMs = 3000;
const keepAliveTimeoutMs = 500;
const perAddressMax = 50;
/** A liveness bound for the well-behaved client, far above its normal latency. */
const servedWithinMs = 2000;

let node: ApiNode;
let port: number;

before(async () => {
  node = await startApiNode({
    http: {
      headersTimeoutMs,
      requestTimeoutMs,
      keepAliveTimeoutMs,
      connectionsPerAddressMax: perAddressMax,
    },
  });
  port = Number(new URL(node.url).port);
});
after(async () => {
  await node?.stop();
});

interface Held {
  readonly socket: Socket;
  /** What the server sent before closing. */
  received: string;
  closedAtMs: number | undefined;
}

function hold(localAddress: string, first: string): Promise<Held> {
  return new Promise((opened, fail) => {
    const socket = connect({ host: "127.0.0.1", port, localAddress });
    const held: Held = { socket, received: "", closedAtMs: undefined };
    socket.on("data", (d: Buffer) => (held.received += d.toString("latin1")));
    socket.on("close", () => (held.closedAtMs = Date.now()));
    socket.on("error", () => undefined);
    socket.once("connect", () => {
      socket.write(first);
      opened(held);
    });
    socket.once("error", fail);
  });
}

/** Sends one byte to every open socket every `everyMs`, until `untilMs`. */
async function dribble(all: readonly Held[], byte: string, everyMs: number, untilMs: number) {
  while (Date.now() < untilMs && all.some((h) => h.closedAtMs === undefined)) {
    for (const h of all) if (h.closedAtMs === undefined) h.socket.write(byte);
    await sleep(everyMs);
  }
}

/** The well-behaved client: `n` authenticated reads, each timed. */
async function wellBehaved(n: number): Promise<number[]> {
  const took: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = Date.now();
    const a = await raw(node.url, "GET", "/v1/transactions/0000000000-0-none", {
      token: node.clientToken,
    });
    assert.ok(a.status < 500, `${a.status} ${a.text}`);
    took.push(Date.now() - started);
    await sleep(50);
  }
  return took;
}

describe("slow clients", () => {
  test("slow headers and slow bodies are cut at their timeouts; others are served", async () => {
    const startedMs = Date.now();
    const slowHeaders = await Promise.all(
      Array.from({ length: 40 }, () =>
        hold("127.0.0.2", "GET /livez HTTP/1.1\r\nHost: verdict\r\nX-Slow: "),
      ),
    );
    const slowBodies = await Promise.all(
      Array.from({ length: 20 }, () =>
        hold(
          "127.0.0.3",
          "POST /v1/transactions HTTP/1.1\r\nHost: verdict\r\nContent-Type: application/json\r\n" +
            `Authorization: Bearer ${node.clientToken}\r\nContent-Length: 1000\r\n\r\n{`,
        ),
      ),
    );
    const untilMs = startedMs + requestTimeoutMs + 3000;
    const [took] = await Promise.all([
      wellBehaved(20),
      dribble(slowHeaders, "a", 200, untilMs),
      dribble(slowBodies, " ", 200, untilMs),
    ]);
    assert.ok(Math.max(...took) < servedWithinMs, `well-behaved client: ${took.join(", ")} ms`);

    for (const [label, all, boundMs] of [
      ["slow headers", slowHeaders, headersTimeoutMs],
      ["slow bodies", slowBodies, requestTimeoutMs],
    ] as const) {
      const open = all.filter((h) => h.closedAtMs === undefined).length;
      assert.equal(open, 0, `${label}: ${open} connections still open`);
      for (const h of all) {
        const heldMs = (h.closedAtMs ?? Infinity) - startedMs;
        assert.ok(heldMs < boundMs + 2500, `${label}: held ${heldMs} ms`);
        assert.match(h.received, /^HTTP\/1\.1 408 /, `${label}: answered ${h.received}`);
        assert.match(h.received, /"code":"request-timeout"/);
      }
    }
  });

  test("an idle keep-alive connection is closed after the keep-alive timeout", async () => {
    const h = await hold("127.0.0.1", "GET /livez HTTP/1.1\r\nHost: verdict\r\n\r\n");
    const answeredMs = Date.now();
    for (let i = 0; i < 100 && h.closedAtMs === undefined; i++) await sleep(50);
    assert.match(h.received, /^HTTP\/1\.1 200 /);
    const idleMs = (h.closedAtMs ?? Infinity) - answeredMs;
    assert.ok(idleMs < keepAliveTimeoutMs + 1500, `closed after ${idleMs} ms idle`);
  });

  test("one address holds at most connectionsPerAddressMax connections", async () => {
    const held = await Promise.all(
      Array.from({ length: perAddressMax + 10 }, () => hold("127.0.0.4", "")),
    );
    await sleep(300);
    const open = held.filter((h) => h.closedAtMs === undefined);
    assert.equal(open.length, perAddressMax);
    const took = await wellBehaved(5);
    assert.ok(Math.max(...took) < servedWithinMs, `${took.join(", ")} ms`);
    for (const h of held) h.socket.destroy();
  });
});

describe("floods of unauthenticated routes", () => {
  const routes: [method: string, path: string, status: number][] = [
    ["GET", "/livez", 200],
    ["GET", "/readyz", 200],
    ["GET", "/healthz", 200],
    ["GET", "/openapi.json", 200],
    ["GET", "/admin/v1/transactions", 401],
    ["POST", "/v1/transactions", 401],
  ];
  for (const [method, path, status] of routes) {
    test(`${method} ${path}: 200 requests, 20 at a time`, async () => {
      let sent = 0;
      const statuses = new Map<number, number>();
      const flooder = async () => {
        while (sent < 200) {
          sent++;
          const a = await raw(node.url, method, path, method === "POST" ? { body: {} } : {});
          statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
        }
      };
      const [took] = await Promise.all([wellBehaved(10), ...Array.from({ length: 20 }, flooder)]);
      assert.deepEqual([...statuses.keys()], [status], JSON.stringify([...statuses]));
      assert.ok(Math.max(...took) < servedWithinMs, `well-behaved: ${took.join(", ")} ms`);
    });
  }
});

test("a JSON body nested past jsonDepthMax is refused before parsing, and begins nothing", async () => {
  const list = async () =>
    (await raw(node.url, "GET", "/admin/v1/transactions", { token: node.adminToken })).text;
  const before = await list();
  const deep = `{"labels":${"[".repeat(40)}${"]".repeat(40)}}`;
  const a = await raw(node.url, "POST", "/v1/transactions", {
    token: node.clientToken,
    rawBody: deep,
  });
  assert.equal(a.status, 400, a.text);
  assert.equal((a.body as { error: { code: string } }).error.code, "json-too-deep");
  // A string holding brackets is not nesting.
  const shallow = await raw(node.url, "POST", "/v1/transactions", {
    token: node.clientToken,
    body: { labels: { note: "[".repeat(100) } },
  });
  assert.equal(shallow.status, 201, shallow.text);
  await raw(node.url, "POST", `/v1/transactions/${(shallow.body as { xid: string }).xid}/abort`, {
    token: node.clientToken,
    body: {},
  });
  assert.notEqual(await list(), before, "the shallow one began");
});
