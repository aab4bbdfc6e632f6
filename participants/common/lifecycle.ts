/**
 * A participant's life — created, started (with what its start produced), closed — and the
 * checks every call makes against it, throwing the participant's own not-started error.
 */
export class Lifecycle<T> {
  private startedWith: T | undefined;
  private isClosed = false;

  constructor(
    private readonly name: string,
    private readonly notStarted: (message: string) => Error,
  ) {}

  get closed(): boolean {
    return this.isClosed;
  }

  /** What `start` produced, or undefined before it (or after `close`). */
  get current(): T | undefined {
    return this.isClosed ? undefined : this.startedWith;
  }

  started(value: T): void {
    this.startedWith = value;
  }

  /** Marks it closed; false when it already was. */
  close(): boolean {
    if (this.isClosed) return false;
    this.isClosed = true;
    return true;
  }

  assertOpen(): void {
    if (this.isClosed) throw this.notStarted(`participant ${this.name} is closed`);
  }

  assertStarted(): T {
    this.assertOpen();
    if (this.startedWith === undefined) {
      throw this.notStarted(`participant ${this.name} was not started`);
    }
    return this.startedWith;
  }
}
