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
import type { Task, TaskEvent } from '../../core/task.ts';
import {
  type AttemptRow,
  type EventRowOf,
  rowToAttempt,
  rowToEvent as sharedRowToEvent,
  rowToTask as sharedRowToTask,
  type TaskRowOf,
  toJson,
} from '../rows.ts';
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
  heartbeat: load('heartbeat'),
  getTask: load('get-task'),
  readTask: load('read-task'),
  writeTask: load('write-task'),
  countByState: load('count-by-state'),
  eventsHorizon: load('events-horizon'),
  listEvents: load('list-events'),
  listTaskEvents: load('list-task-events'),
  outboxLease: load('outbox-lease'),
  outboxAdvance: load('outbox-advance'),
} as const;

/** PostgreSQL hands JSON columns back parsed (and bigints as numbers: see the pool's type parser). */
export type TaskRow = TaskRowOf<unknown>;
export type EventRow = EventRowOf<unknown>;
export type { AttemptRow };
export { rowToAttempt, toJson };

const parsed = (value: unknown): unknown => value;

export function rowToTask(row: TaskRow): Task {
  return sharedRowToTask(row, parsed);
}

export function rowToEvent(row: EventRow): TaskEvent {
  return sharedRowToEvent(row, parsed);
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
