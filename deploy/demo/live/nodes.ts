/**
 * The live demo's coordinator nodes as child processes: started from the built CLI with their
 * logs in files (JSON lines; pretty-log.ts prints them readably), killed with
 * SIGKILL, paused with SIGSTOP (and resumed with SIGCONT), restarted, stopped with SIGTERM.
 * It also asks the nodes who leads (`GET /admin/v1/cluster`), each call bounded.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ClusterNode } from "../cluster-config.js";

/** A node that does not answer this fast counts as not answering (the frame is 1 s). */
const askTimeoutMs = 900;
const stopTimeoutMs = 15_000;

export type NodeState = "running" | "killed" | "paused" | "stopped";

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

export interface ClusterView {
  readonly leaderId: string | undefined;
  readonly term: number | undefined;
  /** Per node: its own answer's view of itself (`leader`, `standby`), or why there is none. */
  readonly roles: ReadonlyMap<string, string>;
}

export class NodeSet {
  private readonly processes = new Map<string, Running>();
  private readonly states = new Map<string, NodeState>();

  constructor(
    readonly nodes: readonly ClusterNode[],
    private readonly cliPath: string,
    private readonly logDir: string,
    private readonly adminToken: string,
  ) {}

  logPath(id: string): string {
    return join(this.logDir, `${id}.log`);
  }

  state(id: string): NodeState {
    return this.states.get(id) ?? "stopped";
  }

  start(id: string): void {
    const node = this.node(id);
    const log = openSync(this.logPath(id), "a");
    const child = spawn(process.execPath, [this.cliPath, "start", "--config", node.configPath], {
      stdio: ["ignore", log, log],
    });
    closeSync(log);
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    this.processes.set(id, { child, exited });
    this.states.set(id, "running");
  }

  kill(id: string): void {
    this.processes.get(id)?.child.kill("SIGKILL");
    this.states.set(id, "killed");
  }

  /** SIGSTOP now, SIGCONT after `pauseMs` (past the lease: another node takes over meanwhile). */
  pause(id: string, pauseMs: number): void {
    const child = this.processes.get(id)?.child;
    if (child === undefined || this.state(id) !== "running") return;
    child.kill("SIGSTOP");
    this.states.set(id, "paused");
    setTimeout(() => {
      if (this.state(id) !== "paused") return;
      child.kill("SIGCONT");
      this.states.set(id, "running");
    }, pauseMs).unref();
  }

  /** Starts again every node that was killed; the ids restarted. */
  restartKilled(): string[] {
    const killed = this.nodes.map((n) => n.id).filter((id) => this.state(id) === "killed");
    for (const id of killed) this.start(id);
    return killed;
  }

  /** SIGTERM to every node (SIGCONT first to a paused one), SIGKILL after a bound. */
  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.processes].map(async ([id, { child, exited }]) => {
        if (this.state(id) === "paused") child.kill("SIGCONT");
        child.kill("SIGTERM");
        const stopped = await Promise.race([exited.then(() => true), sleep(stopTimeoutMs, false)]);
        if (!stopped) child.kill("SIGKILL");
        await exited;
        this.states.set(id, "stopped");
      }),
    );
  }

  /** Every node's answer to who leads; the leader is the one a majority of answers name. */
  async view(): Promise<ClusterView> {
    const answers = await Promise.all(this.nodes.map((n) => this.ask(n)));
    const roles = new Map<string, string>();
    const votes = new Map<string, number>();
    let term: number | undefined;
    this.nodes.forEach((node, i) => {
      const answer = answers[i];
      const state = this.state(node.id);
      if (state !== "running") roles.set(node.id, state);
      else if (answer === undefined) roles.set(node.id, "no answer");
      else {
        roles.set(node.id, answer.leaderId === node.id ? "leader" : "standby");
        if (answer.leaderId !== null) {
          votes.set(answer.leaderId, (votes.get(answer.leaderId) ?? 0) + 1);
        }
        term = Math.max(term ?? 0, answer.term);
      }
    });
    const [leaderId] = [...votes].sort((x, y) => y[1] - x[1])[0] ?? [];
    return { leaderId, term, roles };
  }

  private async ask(
    node: ClusterNode,
  ): Promise<{ leaderId: string | null; term: number } | undefined> {
    if (this.state(node.id) !== "running") return undefined;
    try {
      const res = await fetch(`${node.url}/admin/v1/cluster`, {
        headers: { authorization: `Bearer ${this.adminToken}` },
        signal: AbortSignal.timeout(askTimeoutMs),
      });
      if (!res.ok) return undefined;
      return (await res.json()) as { leaderId: string | null; term: number };
    } catch {
      return undefined;
    }
  }

  private node(id: string): ClusterNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }
}
