/**
 * Runs fired tasks, at most `concurrency` at once, oldest first, and turns each target's result
 * into an outcome for the completer:
 *
 *   fired ──▶ ready (FIFO) ──▶ running ──▶ succeeded | retry (backoff) | failed | expired
 *
 * A task whose deadline passed before it could start is not run (`expired`). Results become
 * outcomes by the rule in outcome.ts.
 */
import type { Clock } from '../core/clock.ts';
import type { Task } from '../core/task.ts';
import type { TaskOutcome } from '../store/store.ts';
import type { RunContext, Target, TargetResult } from '../targets/target.ts';
import type { Logger } from './logger.ts';
import { outcomeFor } from './outcome.ts';

export interface ExecutorOptions {
  clock: Clock;
  logger: Logger;
  concurrency: number;
  /** Picks the target for a task (handler registry, HTTP webhook, ...). */
  resolveTarget: (task: Task) => Target;
  /** Receives each outcome (the completer). */
  onOutcome: (outcome: TaskOutcome, task: Task) => void;
  /** Told when a task starts, with its lateness (start − scheduled time, ms). */
  onStart?: (task: Task, latenessMs: number) => void;
  /**
   * Told when a task waited so long for a slot that its lease could end before its timeout: it
   * is not started (another node may already own it, or soon will) and should be released.
   */
  onLeaseTooShort: (task: Task) => void;
  random?: () => number;
}

export class Executor {
  private readonly options: ExecutorOptions;
  private readonly ready: Task[] = [];
  private readyHead = 0;
  private readonly running = new Map<string, AbortController>();
  /** Moving average of attempt durations, to size claims to what can start in time. */
  private averageRunMs = 0;

  constructor(options: ExecutorOptions) {
    this.options = options;
  }

  /** Tasks waiting for a free slot plus tasks running. */
  get load(): number {
    return this.ready.length - this.readyHead + this.running.size;
  }

  get runningCount(): number {
    return this.running.size;
  }

  /** Roughly how many tasks this executor can start within `ms` at the recent pace (at least one slot each). */
  startableWithin(ms: number): number {
    const { concurrency } = this.options;
    if (this.averageRunMs <= 0) return Number.POSITIVE_INFINITY;
    return Math.max(concurrency, Math.floor((concurrency * ms) / this.averageRunMs));
  }

  submit(tasks: Task[]): void {
    for (const task of tasks) this.ready.push(task);
    this.pump();
  }

  /** Take back tasks that have not started (shutdown): their leases are released. */
  takeWaiting(): Task[] {
    const waiting = this.ready.slice(this.readyHead);
    this.ready.length = 0;
    this.readyHead = 0;
    return waiting;
  }

  /** Remove one waiting task (cancel or edit of a task this node holds). */
  removeWaiting(id: string): Task | undefined {
    for (let i = this.readyHead; i < this.ready.length; i++) {
      const task = this.ready[i] as Task;
      if (task.id === id) {
        this.ready.splice(i, 1);
        return task;
      }
    }
    return undefined;
  }

  /** Abort every running attempt (hard stop after the grace period). */
  abortAll(reason: Error): void {
    for (const controller of this.running.values()) controller.abort(reason);
  }

  private pump(): void {
    const { concurrency } = this.options;
    while (this.running.size < concurrency && this.readyHead < this.ready.length) {
      const task = this.ready[this.readyHead++] as Task;
      // Tasks that must not start are settled here, in the loop: settling them by recursion
      // overflowed the stack when thousands in a row had lost their time (measured).
      if (this.mayStart(task)) void this.execute(task);
    }
    // Compact the FIFO now and then instead of shifting on every start (O(1) amortized).
    if (this.readyHead > 1024 && this.readyHead * 2 > this.ready.length) {
      this.ready.splice(0, this.readyHead);
      this.readyHead = 0;
    }
  }

  /** False (and the task settled) when it is past its deadline or its lease is too short. */
  private mayStart(task: Task): boolean {
    const now = this.options.clock.now();
    if (task.deadlineAt !== null && now > task.deadlineAt) {
      const lease = { id: task.id, leaseToken: task.leaseToken as string };
      this.options.onOutcome({ ...lease, kind: 'expired', startedAt: now, endedAt: now }, task);
      return false;
    }
    // Never start an attempt that could outlive its lease: once the lease ends, another node may
    // claim and run the same task, and that would be a duplicate in normal operation.
    if (task.leaseExpiresAt !== null && now + task.timeoutMs > task.leaseExpiresAt) {
      this.options.onLeaseTooShort(task);
      return false;
    }
    return true;
  }

  private async execute(task: Task): Promise<void> {
    const { clock, onOutcome } = this.options;
    const startedAt = clock.now();
    const controller = new AbortController();
    this.running.set(task.id, controller);
    const timeout = setTimeout(() => controller.abort(new Error(`timeout after ${task.timeoutMs} ms`)), task.timeoutMs);
    this.options.onStart?.(task, startedAt - task.scheduledAt);
    let result: TargetResult;
    try {
      const ctx: RunContext = { attempt: task.attempts, idempotencyKey: task.id, signal: controller.signal };
      result = await this.options.resolveTarget(task).run(task, ctx);
    } catch (error) {
      // Targets return results; a throw here is a bug in a target, recorded rather than lost.
      result = { ok: false, retryable: true, error: `target crashed: ${String(error)}` };
    } finally {
      clearTimeout(timeout);
      this.running.delete(task.id);
    }
    const endedAt = clock.now();
    this.averageRunMs =
      this.averageRunMs === 0 ? endedAt - startedAt : 0.9 * this.averageRunMs + 0.1 * (endedAt - startedAt);
    // A task handed to a remote worker stays running under its lease: the worker reports.
    if (!(result.ok && result.handedOff))
      onOutcome(outcomeFor(task, result, startedAt, endedAt, this.options.random), task);
    this.pump();
  }
}
