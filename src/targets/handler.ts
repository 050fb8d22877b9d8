/**
 * The in-process target: runs the function registered under the task's name.
 */
import type { Task } from '../core/task.ts';
import { PermanentError, type RunContext, type Target, type TargetResult, type TaskHandler } from './target.ts';

export class HandlerRegistry implements Target {
  private readonly handlers = new Map<string, TaskHandler>();

  register(name: string, handler: TaskHandler): void {
    if (typeof name !== 'string' || name === '') throw new Error('handler name must be a non-empty string');
    if (typeof handler !== 'function') throw new Error(`handler for '${name}' is not a function`);
    if (this.handlers.has(name)) throw new Error(`a handler is already registered for '${name}'`);
    this.handlers.set(name, handler);
  }

  has(name: string): boolean {
    return this.handlers.has(name);
  }

  async run(task: Task, ctx: RunContext): Promise<TargetResult> {
    const handler = this.handlers.get(task.name);
    if (!handler) {
      return {
        ok: false,
        retryable: false,
        error: `no handler registered for task name '${task.name}' and the task has no target`,
      };
    }
    if (ctx.signal.aborted) return abortedResult(ctx.signal, task);

    // A handler cannot be stopped from outside, so the attempt ends when the signal fires and the
    // handler's promise settles on its own; `settled` catches its rejection so none goes unhandled.
    const settled = (async (): Promise<TargetResult> => {
      try {
        await handler(task, ctx);
        return { ok: true };
      } catch (err) {
        return { ok: false, retryable: !isPermanent(err), error: errorText(err) };
      }
    })();
    let onAbort = (): void => {};
    const aborted = new Promise<TargetResult>((resolve) => {
      onAbort = () => resolve(abortedResult(ctx.signal, task));
      ctx.signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([settled, aborted]);
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
    }
  }
}

/**
 * Why the signal fired. The dispatcher aborts with an Error that says why ("timeout after 30000 ms",
 * a hard stop); a bare abort() or AbortSignal.timeout() carries a DOMException that says neither,
 * so those read as the task's own timeout.
 */
export function abortMessage(signal: AbortSignal, task: Task): string {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && !(reason instanceof DOMException) && reason.message !== '') return reason.message;
  return `timeout after ${task.timeoutMs} ms`;
}

function abortedResult(signal: AbortSignal, task: Task): TargetResult {
  return { ok: false, retryable: true, error: abortMessage(signal, task) };
}

/** By name too: a handlers module may import PermanentError from another copy of Punctual. */
function isPermanent(err: unknown): boolean {
  return err instanceof PermanentError || (err instanceof Error && err.name === 'PermanentError');
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message !== '' ? err.message : err.name;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err); // cycles, BigInt
  }
}
