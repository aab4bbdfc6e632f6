/**
 * A private 3-member etcd cluster for the tests that kill, pause or cut etcd members (the
 * shared cluster of deploy/local is never touched): the binary deploy/local built
 * (~/.cache/verdict/etcd-v3.6.16), fresh ports and a temporary data directory per member,
 * deploy/local's timing (heartbeat 100 ms, election 1 s) and fsync on.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connectEtcd, connectionDefaults } from "../../coordinator/log/etcd/client.js";
import { etcdBinary } from "../integration/etcd/helpers.js";
import { freePort } from "../support/free-port.js";

const members = 3;
const readyTimeoutMs = 30_000;
const pollMs = 200;

interface Member {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  process: ChildProcess | undefined;
}

export class PrivateEtcd {
  private constructor(
    private readonly root: string,
    private readonly members: readonly Member[],
  ) {}

  /** Starts the three members and waits until each answers. */
  static async start(): Promise<PrivateEtcd> {
    if (!existsSync(etcdBinary())) {
      throw new Error(`no etcd at ${etcdBinary()}: run deploy/local/local.sh up etcd once`);
    }
    const root = await mkdtemp(join(tmpdir(), "verdict-etcd-"));
    const list: Member[] = [];
    for (let n = 1; n <= members; n++) {
      list.push({
        name: `m${n}`,
        clientPort: await freePort(),
        peerPort: await freePort(),
        dataDir: join(root, `m${n}`),
        process: undefined,
      });
    }
    const etcd = new PrivateEtcd(root, list);
    for (let n = 1; n <= members; n++) etcd.launch(n);
    for (let n = 1; n <= members; n++) await etcd.awaitReady(n);
    return etcd;
  }

  /** Where the members' logs are (kept as evidence of a failed case). */
  get logDir(): string {
    return this.root;
  }

  get endpoints(): string[] {
    return this.members.map((m) => `127.0.0.1:${m.clientPort}`);
  }

  endpoint(n: number): string {
    return `127.0.0.1:${this.member(n).clientPort}`;
  }

  /** The member (1..3) that leads etcd's Raft group now. */
  async leader(): Promise<number> {
    for (let n = 1; n <= members; n++) {
      if (!this.running(n)) continue;
      const status = await this.status(n).catch(() => undefined);
      if (status && status.leader === status.header.member_id) return n;
    }
    throw new Error("no member of the private etcd says it leads");
  }

  running(n: number): boolean {
    const p = this.member(n).process;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** Sends `signal` to member n; SIGKILL waits until it is gone. */
  async signal(n: number, signal: NodeJS.Signals): Promise<void> {
    const p = this.member(n).process;
    if (p === undefined || !this.running(n)) return;
    if (signal !== "SIGKILL") {
      p.kill(signal);
      return;
    }
    const gone = new Promise((resolve) => p.once("close", resolve));
    p.kill("SIGKILL");
    await gone;
  }

  /** Starts member n again on its data directory (after a kill) and waits until it answers. */
  async restart(n: number): Promise<void> {
    if (this.running(n)) return;
    this.launch(n);
    await this.awaitReady(n);
  }

  async close(): Promise<void> {
    for (let n = 1; n <= members; n++) {
      if (this.running(n)) this.member(n).process?.kill("SIGCONT");
      await this.signal(n, "SIGKILL");
    }
    await rm(this.root, { recursive: true, force: true });
  }

  private member(n: number): Member {
    const m = this.members[n - 1];
    if (m === undefined) throw new RangeError(`no etcd member ${n}`);
    return m;
  }

  private launch(n: number): void {
    const m = this.member(n);
    const peers = this.members.map((p) => `${p.name}=http://127.0.0.1:${p.peerPort}`).join(",");
    const args = [
      ["--name", m.name],
      ["--data-dir", m.dataDir],
      ["--listen-client-urls", `http://127.0.0.1:${m.clientPort}`],
      ["--advertise-client-urls", `http://127.0.0.1:${m.clientPort}`],
      ["--listen-peer-urls", `http://127.0.0.1:${m.peerPort}`],
      ["--initial-advertise-peer-urls", `http://127.0.0.1:${m.peerPort}`],
      ["--initial-cluster", peers],
      ["--initial-cluster-token", `verdict-test-${this.root.slice(-6)}`],
      ["--initial-cluster-state", "new"],
      ["--heartbeat-interval", "100"],
      ["--election-timeout", "1000"],
      ["--log-level", "warn"],
    ].flat();
    const log = createWriteStream(join(this.root, `${m.name}.log`), { flags: "a" });
    const child = spawn(etcdBinary(), args, { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    m.process = child;
  }

  private async status(n: number) {
    const client = connectEtcd({ endpoints: [this.endpoint(n)], ...connectionDefaults });
    try {
      return await client.maintenance.status();
    } finally {
      client.close();
    }
  }

  /** A member answers once the cluster has a leader (a lone member waits for its peers). */
  private async awaitReady(n: number): Promise<void> {
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      const status = await this.status(n).catch(() => undefined);
      if (status !== undefined && status.leader !== "0") return;
      if (!this.running(n)) throw new Error(`etcd member ${n} exited; logs in ${this.root}`);
      if (Date.now() > deadline)
        throw new Error(`etcd member ${n} not ready; logs in ${this.root}`);
      await sleep(pollMs);
    }
  }
}
