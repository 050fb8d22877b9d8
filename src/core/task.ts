/**
 * The task and the words around it.
 *
 * Glossary
 * - task: one unit of work to run at `scheduledAt` (epoch ms). Identified by a UUIDv7 `id`.
 * - attempt: one claim of a task by a node. `attempts` counts claims, so a task whose handler kills
 *   its node on every run ends `failed` after `maxAttempts` claims instead of looping (poison pill).
 * - lease: the right of one node (`leaseOwner`) to run a claimed task until `leaseExpiresAt`.
 *   `leaseToken` fences completions: a completion carrying an older token is rejected.
 * - target: how a task runs: an in-process handler registered by name, an HTTP webhook, a Kafka
 *   message, or a remote worker claiming it from a queue.
 * - event: one row per state change, written in the same transaction as the change (the outbox).
 *
 * All times are integer epoch milliseconds inside Punctual; the HTTP API speaks RFC 3339.
 */

export const TASK_STATES = ['scheduled', 'running', 'succeeded', 'failed', 'canceled', 'expired'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Run by the in-process handler registered under the task's name (the default). */
export interface HandlerTarget {
  type: 'handler';
}

/** POST (or `method`) the task to a URL; 2xx is success. */
export interface HttpTarget {
  type: 'http';
  url: string;
  method?: HttpMethod;
  headers?: Record<string, string>;
  /** Time limit for the request; the task's timeout still bounds it. */
  timeout_ms?: number;
}

/** Publish the task's payload (JSON) to a Kafka topic at the task's time. */
export interface KafkaTarget {
  type: 'kafka';
  topic: string;
  /** The message key (default: the task id). */
  key?: string;
  headers?: Record<string, string>;
  /** Succeed when a worker reports success on the results topic, not when the message is published. */
  await_result?: boolean;
}

/**
 * Handed to a remote worker that claims it from `queue` over HTTP (POST /v1/queues/{queue}/claim).
 * A task with no target and no in-process handler for its name gets the queue named after it.
 */
export interface WorkerTarget {
  type: 'worker';
  queue: string;
}

export type TaskTarget = HandlerTarget | HttpTarget | KafkaTarget | WorkerTarget;

/** The worker queue a task waits in, or null when nodes run it themselves. */
export function queueOf(task: Pick<NewTask, 'target'>): string | null {
  return task.target?.type === 'worker' ? task.target.queue : null;
}

/** Exponential backoff with full jitter between retries: delay = random(0, min(max, base * factor^(n-1))). */
export interface Backoff {
  type: 'exponential';
  base_ms: number;
  factor: number;
  max_ms: number;
  jitter: boolean;
}

export const DEFAULT_BACKOFF: Backoff = {
  type: 'exponential',
  base_ms: 1_000,
  factor: 2,
  max_ms: 3_600_000,
  jitter: true,
};
export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_NAMESPACE = 'default';

/** What a caller supplies; the store fills in state, attempts, lease and timestamps. */
export interface NewTask {
  id: string;
  namespace: string;
  name: string;
  description: string | null;
  payload: unknown;
  target: TaskTarget | null;
  scheduledAt: number;
  deadlineAt: number | null;
  maxAttempts: number;
  timeoutMs: number;
  backoff: Backoff;
  idempotencyKey: string | null;
  /** Hash of the request that created the task, to tell a replay from a conflicting reuse of its key. */
  requestHash: string | null;
}

export interface Task extends NewTask {
  state: TaskState;
  attempts: number;
  leaseOwner: string | null;
  leaseToken: string | null;
  leaseExpiresAt: number | null;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

export type AttemptOutcome = 'succeeded' | 'failed' | 'retry' | 'lease_expired' | 'released' | 'expired' | 'canceled';

export interface Attempt {
  taskId: string;
  attempt: number;
  leaseOwner: string;
  claimedAt: number;
  startedAt: number | null;
  endedAt: number | null;
  outcome: AttemptOutcome | null;
  error: string | null;
}

export interface TaskWithAttempts extends Task {
  attemptLog: Attempt[];
}

export const EVENT_TYPES = [
  'created',
  'claimed',
  'succeeded',
  'retry_scheduled',
  'failed',
  'lease_expired',
  'released',
  'canceled',
  'expired',
  'rescheduled',
  'updated',
  'retried',
  'run_now',
] as const;
export type TaskEventType = (typeof EVENT_TYPES)[number];

export interface TaskEvent {
  seq: number;
  taskId: string;
  namespace: string;
  name: string;
  type: TaskEventType;
  attempt: number;
  at: number;
  data: Record<string, unknown> | null;
}
