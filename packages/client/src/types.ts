/** The API's JSON shapes (snake_case, as on the wire). See the service's /openapi.json. */

export type TaskState = 'scheduled' | 'running' | 'succeeded' | 'failed' | 'canceled' | 'expired';

export type TaskTarget =
  | { type: 'handler' }
  | {
      type: 'http';
      url: string;
      method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
      headers?: Record<string, string>;
      timeout_ms?: number;
    }
  | { type: 'kafka'; topic: string; key?: string; headers?: Record<string, string>; await_result?: boolean }
  | { type: 'worker'; queue: string };

export interface Backoff {
  type: 'exponential';
  base_ms: number;
  factor: number;
  max_ms: number;
}

export interface TaskInput {
  name: string;
  /** RFC 3339 with an offset, or a Date. */
  scheduled_date: string | Date;
  description?: string;
  payload?: unknown;
  target?: TaskTarget;
  deadline?: string | Date;
  max_attempts?: number;
  timeout_ms?: number;
  backoff?: Partial<Backoff>;
  idempotency_key?: string;
  namespace?: string;
}

export interface Task {
  id: string;
  namespace: string;
  name: string;
  description: string | null;
  payload: unknown;
  target: TaskTarget | null;
  state: TaskState;
  scheduled_date: string;
  deadline: string | null;
  max_attempts: number;
  timeout_ms: number;
  backoff: Backoff;
  idempotency_key: string | null;
  attempts: number;
  lease: { owner: string; expires_at: string } | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

export interface Attempt {
  attempt: number;
  lease_owner: string;
  claimed_at: string;
  started_at: string | null;
  ended_at: string | null;
  outcome: string | null;
  error: string | null;
}

export interface TaskWithAttempts extends Task {
  attempt_log: Attempt[];
}

export interface BatchResult {
  status: 'created' | 'existing' | 'conflict';
  task: Task;
}

export interface ListQuery {
  state?: TaskState;
  name?: string;
  namespace?: string;
  scheduled_after?: string | Date;
  scheduled_before?: string | Date;
  limit?: number;
  cursor?: string;
}

export interface TaskPage {
  tasks: Task[];
  next_cursor: string | null;
}

export interface TaskChanges {
  name?: string;
  description?: string | null;
  payload?: unknown;
  target?: TaskTarget | null;
  scheduled_date?: string | Date;
  deadline?: string | Date | null;
  max_attempts?: number;
  timeout_ms?: number;
  backoff?: Partial<Backoff>;
}

/** A task claimed by a worker: running, leased to it until `lease.expires_at` (heartbeats extend it). */
export interface ClaimedTask extends Task {
  lease_token: string;
}
