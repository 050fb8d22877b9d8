import { uuidv7 } from '../../src/core/ids.ts';
import {
  DEFAULT_BACKOFF,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_NAMESPACE,
  DEFAULT_TIMEOUT_MS,
  type Task,
} from '../../src/core/task.ts';

/** A scheduled, never-claimed task; override what the test is about. */
export function makeTask(overrides: Partial<Task> = {}): Task {
  const now = Date.now();
  return {
    id: uuidv7(now),
    namespace: DEFAULT_NAMESPACE,
    name: 'test-task',
    description: null,
    payload: {},
    target: null,
    state: 'scheduled',
    scheduledAt: now,
    deadlineAt: null,
    maxAttempts: DEFAULT_MAX_ATTEMPTS,
    timeoutMs: DEFAULT_TIMEOUT_MS,
    backoff: { ...DEFAULT_BACKOFF },
    idempotencyKey: null,
    requestHash: null,
    attempts: 0,
    leaseOwner: null,
    leaseToken: null,
    leaseExpiresAt: null,
    lastError: null,
    createdAt: now,
    updatedAt: now,
    finishedAt: null,
    ...overrides,
  };
}
