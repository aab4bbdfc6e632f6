/**
 * The options every load bench shares (transfer.ts, cluster.ts): the load's shape, one table
 * so that the benches agree on names, ranges and defaults. And `auto` options resolved by
 * whether the services they need answer.
 */
import { connect } from "node:net";

// Clients are capped so that A0 (two connections per client) plus a node's two pools (as
// many again) stay well under PostgreSQL's max_connections (300 in deploy/local).
export const loadOptions = {
  clients: { default: 16, min: 1, max: 64, help: "concurrent clients per load scenario" },
  "duration-s": { default: 10, min: 1, max: 3600, help: "measured seconds per scenario" },
  "warmup-s": { default: 1, min: 0, max: 60, help: "unmeasured seconds before each" },
  "serial-s": { default: 5, min: 0, max: 3600, help: "seconds of the one-client pass (0: none)" },
  accounts: { default: 1000, min: 2, max: 10_000_000, help: "accounts per database" },
  "tx-max": { default: 1_000_000, min: 1, max: 10_000_000, help: "transfers per scenario" },
} as const;

/** An option that runs a part of a bench: `auto` runs it when its services answer. */
export function partOption(help: string) {
  return { default: "auto", choices: ["auto", "on", "off"], help } as const;
}

const probeTimeoutMs = 2_000;

/**
 * Whether a part runs: `on` and `off` as given, `auto` when every `host:port` accepts a TCP
 * connection within the probe timeout.
 */
export async function partRuns(choice: string, addresses: readonly string[]): Promise<boolean> {
  if (choice !== "auto") return choice === "on";
  const answers = await Promise.all(addresses.map(accepts));
  return answers.every(Boolean);
}

function accepts(address: string): Promise<boolean> {
  const at = address.lastIndexOf(":");
  const host = address.slice(0, at);
  const port = Number(address.slice(at + 1));
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: probeTimeoutMs });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("timeout", () => done(false));
    socket.once("error", () => done(false));
  });
}
