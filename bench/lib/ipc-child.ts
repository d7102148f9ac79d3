/**
 * A benchmark's helper process: this same script forked with a role flag (`--server`,
 * `--links`), spoken to over Node's IPC channel by messages tagged with `op`. `next(op, send)`
 * sends `send` (when given) and resolves with the child's next message, which must be `op`.
 */
import { fork, type ChildProcess } from 'node:child_process';

export class IpcChild<To, From extends { readonly op: string }> {
  readonly child: ChildProcess;
  readonly #name: string;
  readonly #waiters: ((m: From) => void)[] = [];

  constructor(script: string, role: string, execArgv: readonly string[]) {
    this.#name = role.replace(/^-+/, '');
    this.child = fork(script, [role], { execArgv: ['--import', 'tsx', ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: From) => this.#waiters.shift()?.(m));
  }

  async next<T extends From['op']>(op: T, send?: To): Promise<Extract<From, { op: T }>> {
    const p = new Promise<From>((r) => this.#waiters.push(r));
    if (send !== undefined) this.child.send(send as object);
    const m = await p;
    if (m.op !== op) throw new Error(`${this.#name} answered ${m.op}, expected ${op}`);
    return m as Extract<From, { op: T }>;
  }

  stop(): void {
    this.child.kill();
  }
}
