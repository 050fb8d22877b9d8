/** The tasks the scenarios create: library NewTasks and API request bodies. */
import { uuidv7 } from '../../src/core/ids.ts';
import {
  DEFAULT_BACKOFF,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_NAMESPACE,
  DEFAULT_TIMEOUT_MS,
  type NewTask,
} from '../../src/core/task.ts';

export const NOOP = 'bench-noop';

export function newTask(scheduledAt: number, index: number): NewTask {
  return {
    id: uuidv7(),
    namespace: DEFAULT_NAMESPACE,
    name: NOOP,
    description: `bench task ${index}`,
    payload: null,
    target: null,
    scheduledAt,
    deadlineAt: null,
    maxAttempts: DEFAULT_MAX_ATTEMPTS,
    timeoutMs: DEFAULT_TIMEOUT_MS,
    backoff: { ...DEFAULT_BACKOFF },
    idempotencyKey: null,
    requestHash: null,
  };
}

/** The body of one task in an API create request (the minimal, original payload shape). */
export function taskBody(
  scheduledAt: number,
  index: number,
): { name: string; description: string; scheduled_date: string } {
  return { name: NOOP, description: `bench task ${index}`, scheduled_date: new Date(scheduledAt).toISOString() };
}

/** Far enough ahead that the dispatcher never claims it during the run. */
export function farFuture(): number {
  return Date.now() + 365 * 24 * 3600 * 1000;
}
