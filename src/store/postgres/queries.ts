/**
 * The PostgreSQL store's statements (one file per operation in ./queries, each opening with the
 * parameters it takes) and the mapping between their rows and the core types.
 *
 * Rows come back snake_case. bigint columns arrive as numbers (the pool's type parser; epoch ms
 * stay far below 2^53) and json columns already parsed; rows aggregated as JSON inside a statement
 * (json_agg) have the same shape.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Attempt, AttemptOutcome, Task, TaskEvent, TaskEventType, TaskState } from '../../core/task.ts';
import type { TaskListParams, TaskOutcome } from '../store.ts';

/** A statement: `name` identifies it as a prepared statement on each connection. */
export interface Statement {
  name: string;
  text: string;
}

function load(name: string): Statement {
  return {
    name: `punctual_${name.replaceAll('-', '_')}`,
    text: readFileSync(join(import.meta.dirname, 'queries', `${name}.sql`), 'utf8'),
  };
}

export const SQL = {
  create: load('create'),
  claimDue: load('claim-due'),
  complete: load('complete'),
  release: load('release'),
  getTask: load('get-task'),
  readTask: load('read-task'),
  writeTask: load('write-task'),
  countByState: load('count-by-state'),
  eventsHorizon: load('events-horizon'),
  listEvents: load('list-events'),
} as const;

export interface TaskRow {
  id: string;
  namespace: string;
  name: string;
  description: string | null;
  payload: unknown;
  target: Task['target'];
  state: TaskState;
  scheduled_at: number;
  deadline_at: number | null;
  max_attempts: number;
  timeout_ms: number;
  backoff: Task['backoff'];
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

export interface EventRow {
  seq: number;
  task_id: string;
  namespace: string;
  name: string;
  type: TaskEventType;
  attempt: number;
  at: number;
  data: Record<string, unknown> | null;
}

export function rowToTask(row: TaskRow): Task {
  return {
    id: row.id,
    namespace: row.namespace,
    name: row.name,
    description: row.description,
    payload: row.payload,
    target: row.target,
    state: row.state,
    scheduledAt: row.scheduled_at,
    deadlineAt: row.deadline_at,
    maxAttempts: row.max_attempts,
    timeoutMs: row.timeout_ms,
    backoff: row.backoff,
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

export function rowToEvent(row: EventRow): TaskEvent {
  return {
    seq: row.seq,
    taskId: row.task_id,
    namespace: row.namespace,
    name: row.name,
    type: row.type,
    attempt: row.attempt,
    at: row.at,
    data: row.data,
  };
}

/** JSON columns are nullable: an absent (undefined) or null value is stored as SQL NULL, read as null. */
export function toJson(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}

/** Parameters of SQL.complete: one array per column, in the order of the outcomes. */
export function completeParams(outcomes: TaskOutcome[], now: number | null, channel: string): unknown[] {
  return [
    now,
    outcomes.map((o) => o.id),
    outcomes.map((o) => o.leaseToken),
    outcomes.map((o) => o.kind),
    outcomes.map((o) => o.startedAt),
    outcomes.map((o) => o.endedAt),
    outcomes.map((o) => (o.kind === 'retry' || o.kind === 'failed' ? o.error : null)),
    outcomes.map((o) => (o.kind === 'retry' ? o.retryAt : null)),
    channel,
  ];
}

/**
 * The list query for the filters present. Only the shape varies (each shape is a prepared
 * statement of its own, named by its filters); values are always bound.
 */
export function listQuery(params: TaskListParams): Statement & { values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  const bind = (value: unknown) => {
    values.push(value);
    return `$${values.length}`;
  };
  const filters: string[] = [];
  if (params.namespace !== undefined) {
    where.push(`namespace = ${bind(params.namespace)}::text`);
    filters.push('ns');
  }
  if (params.state !== undefined) {
    where.push(`state = ${bind(params.state)}::text`);
    filters.push('st');
  }
  if (params.name !== undefined) {
    where.push(`name = ${bind(params.name)}::text`);
    filters.push('nm');
  }
  if (params.scheduledAfter !== undefined) {
    where.push(`scheduled_at >= ${bind(params.scheduledAfter)}::bigint`);
    filters.push('from');
  }
  if (params.scheduledBefore !== undefined) {
    where.push(`scheduled_at <= ${bind(params.scheduledBefore)}::bigint`);
    filters.push('to');
  }
  if (params.after !== undefined) {
    where.push(`(scheduled_at, id) > (${bind(params.after.scheduledAt)}::bigint, ${bind(params.after.id)}::text)`);
    filters.push('after');
  }
  const filter = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
  return {
    name: `punctual_list_${filters.join('_') || 'all'}`,
    text: `SELECT * FROM tasks ${filter} ORDER BY scheduled_at, id LIMIT ${bind(params.limit)}::int`,
    values,
  };
}
