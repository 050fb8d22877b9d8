/**
 * How a target's result becomes a task outcome: one rule for attempts run here and for outcomes
 * reported by remote workers. A failed attempt is retried after exponential backoff with jitter
 * (or the target's Retry-After, if longer) while attempts remain and the retry would not pass the
 * deadline.
 */
import { backoffDelay } from '../core/backoff.ts';
import type { Task } from '../core/task.ts';
import type { TaskOutcome } from '../store/store.ts';
import type { TargetResult } from '../targets/target.ts';

export function outcomeFor(
  task: Task,
  result: TargetResult,
  startedAt: number,
  endedAt: number,
  random?: () => number,
): TaskOutcome {
  const base = { id: task.id, leaseToken: task.leaseToken as string, startedAt, endedAt };
  if (result.ok) return { ...base, kind: 'succeeded' };
  if (!result.retryable) return { ...base, kind: 'failed', error: result.error };
  if (task.attempts >= task.maxAttempts) {
    return { ...base, kind: 'failed', error: `${result.error} (attempt ${task.attempts} of ${task.maxAttempts})` };
  }
  const delay = Math.max(backoffDelay(task.backoff, task.attempts, random), result.retryAfterMs ?? 0);
  const retryAt = endedAt + delay;
  if (task.deadlineAt !== null && retryAt > task.deadlineAt) {
    return { ...base, kind: 'failed', error: `${result.error} (a retry would pass the deadline)` };
  }
  return { ...base, kind: 'retry', error: result.error, retryAt };
}
