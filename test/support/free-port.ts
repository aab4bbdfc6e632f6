import { readFileSync } from "node:fs";
import net from "node:net";

/** Below the kernel's ephemeral range, so no outgoing connection can take the port between our
 * check and the server's (re)start: a node keeps its port across kills, and a loaded test opens
 * thousands of client sockets meanwhile. CI once lost a restart to EADDRINUSE that way. */
const RESERVED_LOW = 10_000;

function ephemeralLow(): number {
  try {
    const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
      .trim()
      .split(/\s+/);
    return Number(low);
  } catch {
    return 0; // not Linux: let the OS pick
  }
}

async function tryListen(port: number): Promise<number | undefined> {
  const server = net.createServer();
  const bound = await new Promise<boolean>((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => resolve(true));
  });
  if (!bound) return undefined;
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return address !== null && typeof address !== "string" ? address.port : undefined;
}

/** A loopback port free right now, for a throwaway server of a test. */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  if (low > RESERVED_LOW + 1_000) {
    for (let attempt = 0; attempt < 64; attempt++) {
      const port = RESERVED_LOW + Math.floor(Math.random() * (low - RESERVED_LOW));
      const got = await tryListen(port);
      if (got !== undefined) return got;
    }
  }
  const got = await tryListen(0);
  if (got === undefined) throw new Error("no port assigned");
  return got;
}
