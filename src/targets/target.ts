/**
 * The target contract: how one attempt of one task is run. Targets know nothing of stores; they
 * return a result and the dispatcher turns it into a state change.
 */
import type { Task } from '../core/task.ts';

export interface RunContext {
  /** 1 for the first attempt. */
  attempt: number;
  /** Stable across attempts and redeliveries of the task: targets dedupe on it. */
  idempotencyKey: string;
  /** Fires when the attempt's timeout passes or the node stops hard. */
  signal: AbortSignal;
}

export type TargetResult =
  /**
   * `handedOff`: the task went to a remote worker, which reports the outcome later (fenced by the
   * lease token); the task stays running until then or until its lease ends.
   */
  | { ok: true; handedOff?: boolean }
  | {
      ok: false;
      /** false: no retry can help (a 4xx, a missing handler); the task fails now. */
      retryable: boolean;
      error: string;
      /** The target asked for a pause before the next attempt (Retry-After). */
      retryAfterMs?: number;
    };

export interface Target {
  run(task: Task, ctx: RunContext): Promise<TargetResult>;
}

/** The function users register for a task name. Return to succeed; throw to fail the attempt. */
export type TaskHandler = (task: Task, ctx: RunContext) => unknown | Promise<unknown>;

/** Throw from a handler to fail the task at once, without retries. */
export class PermanentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentError';
  }
}
