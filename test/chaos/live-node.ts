/**
 * The node the soak's clients talk to, across kills: `next()` hands out the running node, or
 * waits for the next one to listen (or for the end of the run: undefined). Each client waits
 * on at most one `next()` at a time, so the waiters are bounded by the number of clients.
 */
import type { ProcessNode } from "../support/process-node.js";

export class LiveNode {
  private node: ProcessNode | undefined;
  private stopped = false;
  private waiters: ((node: ProcessNode | undefined) => void)[] = [];

  /** A new node listens: clients waiting for one get it. */
  up(node: ProcessNode): void {
    this.node = node;
    for (const wake of this.waiters.splice(0)) wake(node);
  }

  /** The node is about to be killed: new transfers wait for the next one. */
  down(): void {
    this.node = undefined;
  }

  /** The run is over: every waiting and later `next()` gets undefined. */
  stop(): void {
    this.stopped = true;
    this.node = undefined;
    for (const wake of this.waiters.splice(0)) wake(undefined);
  }

  next(): Promise<ProcessNode | undefined> {
    if (this.stopped) return Promise.resolve(undefined);
    if (this.node !== undefined && this.node.exitStatus() === undefined) {
      return Promise.resolve(this.node);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
