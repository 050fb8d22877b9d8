/**
 * The rows every SQL driver stores — tasks, attempts, events, in snake_case — and their mapping to
 * the core types, written once. Drivers differ only in how JSON columns come back (`Json`): text
 * in SQLite, already parsed in PostgreSQL; each passes its own `decode`.
 */
import type { Attempt, AttemptOutcome, Task, TaskEvent, TaskEventType, TaskState } from '../core/task.ts';

export interface TaskRowOf<Json> {
  id: string;
  namespace: string;
  name: string;
  description: string | null;
  payload: Json | null;
  target: Json | null;
  state: TaskState;
  scheduled_at: number;
  deadline_at: number | null;
  max_attempts: number;
  timeout_ms: number;
  backoff: Json;
  idempotency_key: string | null;
  request_hash: string | null;
  attempts: number;
  lease_owner: string | null;
  lease_token: string | null;
  lease_expires_at: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export interface AttemptRow {
  task_id: string;
  attempt: number;
  lease_owner: string;
  claimed_at: number;
  started_at: number | null;
  ended_at: number | null;
  outcome: AttemptOutcome | null;
  error: string | null;
}

export interface EventRowOf<Json> {
  seq: number;
  task_id: string;
  namespace: string;
  name: string;
  type: TaskEventType;
  attempt: number;
  at: number;
  data: Json | null;
}

/** Reads a JSON column's value; SQL NULL stays null. */
export type JsonDecoder<Json> = (value: Json) => unknown;

export function rowToTask<Json>(row: TaskRowOf<Json>, decode: JsonDecoder<Json>): Task {
  return {
    id: row.id,
    namespace: row.namespace,
    name: row.name,
    description: row.description,
    payload: row.payload === null ? null : decode(row.payload),
    target: row.target === null ? null : (decode(row.target) as Task['target']),
    state: row.state,
    scheduledAt: row.scheduled_at,
    deadlineAt: row.deadline_at,
    maxAttempts: row.max_attempts,
    timeoutMs: row.timeout_ms,
    backoff: decode(row.backoff) as Task['backoff'],
    idempotencyKey: row.idempotency_key,
    requestHash: row.request_hash,
    attempts: row.attempts,
    leaseOwner: row.lease_owner,
    leaseToken: row.lease_token,
    leaseExpiresAt: row.lease_expires_at,
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    finishedAt: row.finished_at,
  };
}

export function rowToAttempt(row: AttemptRow): Attempt {
  return {
    taskId: row.task_id,
    attempt: row.attempt,
    leaseOwner: row.lease_owner,
    claimedAt: row.claimed_at,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    outcome: row.outcome,
    error: row.error,
  };
}

export function rowToEvent<Json>(row: EventRowOf<Json>, decode: JsonDecoder<Json>): TaskEvent {
  return {
    seq: row.seq,
    taskId: row.task_id,
    namespace: row.namespace,
    name: row.name,
    type: row.type,
    attempt: row.attempt,
    at: row.at,
    data: row.data === null ? null : (decode(row.data) as Record<string, unknown>),
  };
}

/** JSON columns are nullable: an absent (undefined) or null value is stored as SQL NULL, read as null. */
export function toJson(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}
