/**
 * A TCP proxy on loopback in front of one etcd member, which a test can cut: a cut proxy
 * black-holes (bytes are neither forwarded nor refused), which is what a partition looks like
 * to the client: no error, no answer.
 */
import net from "node:net";

export class FaultProxy {
  private readonly sockets = new Set<net.Socket>();
  private cutNow = false;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<FaultProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no port assigned");
    const proxy = new FaultProxy(server, address.port);
    server.on("connection", (client) => proxy.forward(client, targetPort));
    return proxy;
  }

  get endpoint(): string {
    return `127.0.0.1:${this.port}`;
  }

  private forward(client: net.Socket, targetPort: number): void {
    if (this.cutNow) {
      // A connection made during the cut hangs too (heal resets it), even to a dead member.
      this.sockets.add(client);
      client.on("error", () => client.destroy());
      client.on("close", () => this.sockets.delete(client));
      return;
    }
    const upstream = net.connect(targetPort, "127.0.0.1");
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(from);
      from.on("data", (chunk: Buffer) => {
        if (!this.cutNow) to.write(chunk);
      });
      from.on("error", () => to.destroy());
      from.on("close", () => {
        this.sockets.delete(from);
        to.destroy();
      });
    }
  }

  /** From now on every byte in either direction is dropped silently. */
  cut(): void {
    this.cutNow = true;
  }

  /**
   * Forwards again. The connections open during the cut lost bytes mid-stream, so they are
   * reset: the client reconnects, as it would after a real partition timed its streams out.
   */
  heal(): void {
    this.cutNow = false;
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
