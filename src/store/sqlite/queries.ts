/**
 * SQL text and row mapping for the SQLite store. Statements use named parameters bound from
 * camelCase objects; rows come back snake_case and are mapped to the core types here.
 */
import type Database from 'better-sqlite3';
import type { Task, TaskEvent, TaskState } from '../../core/task.ts';
import {
  type AttemptRow,
  type EventRowOf,
  rowToAttempt,
  rowToEvent as sharedRowToEvent,
  rowToTask as sharedRowToTask,
  type TaskRowOf,
  toJson,
} from '../rows.ts';
import type { TaskListParams } from '../store.ts';

export type TaskRow = TaskRowOf<string>;
export type EventRow = EventRowOf<string>;
export type { AttemptRow };

/** SQLite keeps JSON columns as TEXT. */
const parseJson = (text: string): unknown => JSON.parse(text);

export function rowToTask(row: TaskRow): Task {
  return sharedRowToTask(row, parseJson);
}

export function rowToEvent(row: EventRow): TaskEvent {
  return sharedRowToEvent(row, parseJson);
}

export { rowToAttempt };

/** Bind parameters for a whole task row (the JSON columns serialised). */
export function taskParams(task: Task): Record<string, unknown> {
  return { ...task, payload: toJson(task.payload), target: toJson(task.target), backoff: JSON.stringify(task.backoff) };
}

export function eventData(data: Record<string, unknown> | null): string | null {
  return toJson(data);
}

const TASK_COLUMNS =
  'id, namespace, name, description, payload, target, state, scheduled_at, deadline_at, max_attempts, timeout_ms, ' +
  'backoff, idempotency_key, request_hash, attempts, lease_owner, lease_token, lease_expires_at, last_error, ' +
  'created_at, updated_at, finished_at';

const LEASE_CLEARED = 'lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL';
/** Just what the event row needs: returning whole rows cost more than the update (measured). */
const RETURNING_EVENT_SUBJECT = 'RETURNING id, namespace, name, attempts';

export interface EventSubjectRow {
  id: string;
  namespace: string;
  name: string;
  attempts: number;
}

export const SQL = {
  insertTask: `INSERT INTO tasks (${TASK_COLUMNS}) VALUES (
    @id, @namespace, @name, @description, @payload, @target, @state, @scheduledAt, @deadlineAt, @maxAttempts,
    @timeoutMs, @backoff, @idempotencyKey, @requestHash, @attempts, @leaseOwner, @leaseToken, @leaseExpiresAt,
    @lastError, @createdAt, @updatedAt, @finishedAt)`,

  /** Rewrites every mutable column: the admin operations compute the new task, then store it whole. */
  writeTask: `UPDATE tasks SET name = @name, description = @description, payload = @payload, target = @target,
    state = @state, scheduled_at = @scheduledAt, deadline_at = @deadlineAt, max_attempts = @maxAttempts,
    timeout_ms = @timeoutMs, backoff = @backoff, attempts = @attempts, lease_owner = @leaseOwner,
    lease_token = @leaseToken, lease_expires_at = @leaseExpiresAt, last_error = @lastError,
    updated_at = @updatedAt, finished_at = @finishedAt
    WHERE id = @id RETURNING *`,

  getTask: 'SELECT * FROM tasks WHERE id = ?',
  getByIdempotencyKey: 'SELECT * FROM tasks WHERE namespace = ? AND idempotency_key = ?',

  /**
   * Due work, oldest first. Each branch is limited on its own partial index before the merge, so a
   * large backlog is never sorted whole. INDEXED BY pins those indexes: without statistics the
   * planner prefers the wider state index, which scans every running task for expired leases.
   */
  selectDue: `SELECT * FROM (
      SELECT * FROM (SELECT * FROM tasks INDEXED BY tasks_state_idx
                     WHERE state = 'scheduled' AND queue IS NULL AND scheduled_at < @until
                     ORDER BY scheduled_at, id LIMIT @limit)
      UNION ALL
      SELECT * FROM (SELECT * FROM tasks INDEXED BY tasks_lease_idx
                     WHERE state = 'running' AND lease_expires_at <= @now
                       AND (queue IS NULL OR queue IN (SELECT value FROM json_each(@queues)))
                     ORDER BY scheduled_at, id LIMIT @limit)
    ) ORDER BY scheduled_at, id LIMIT @limit`,

  /** One worker queue's due tasks, oldest first, for a node with workers waiting on it. */
  selectQueueDue: `SELECT * FROM tasks INDEXED BY tasks_state_idx
    WHERE state = 'scheduled' AND queue = @queue AND scheduled_at < @until
    ORDER BY scheduled_at, id LIMIT @limit`,

  claimTask: `UPDATE tasks SET state = 'running', attempts = attempts + 1, lease_owner = @owner,
    lease_token = @token, lease_expires_at = @expiresAt, updated_at = @now
    WHERE id = @id`,

  /** Ends a task found by a claim (deadline passed or attempts used up); no lease to fence. */
  endTask: `UPDATE tasks SET state = @state, last_error = COALESCE(@error, last_error), finished_at = @now,
    ${LEASE_CLEARED}, updated_at = @now
    WHERE id = @id RETURNING *`,

  /** Applies an outcome, fenced: a row only matches while the caller's lease is the current one. */
  completeTask: `UPDATE tasks SET state = @state, scheduled_at = COALESCE(@scheduledAt, scheduled_at),
    last_error = COALESCE(@error, last_error), finished_at = @finishedAt, ${LEASE_CLEARED}, updated_at = @now
    WHERE id = @id AND state = 'running' AND lease_token = @token ${RETURNING_EVENT_SUBJECT}`,

  releaseTask: `UPDATE tasks SET state = 'scheduled', attempts = attempts - 1, ${LEASE_CLEARED}, updated_at = @now
    WHERE id = @id AND state = 'running' AND lease_token = @token ${RETURNING_EVENT_SUBJECT}`,

  heartbeatTask: `UPDATE tasks SET lease_expires_at = max(lease_expires_at, @expiresAt), updated_at = @now
    WHERE id = @id AND state = 'running' AND lease_token = @token RETURNING lease_expires_at`,

  openAttempt: `INSERT INTO task_attempts (task_id, attempt, lease_owner, claimed_at)
    VALUES (@taskId, @attempt, @leaseOwner, @claimedAt)`,

  /** A running task has exactly one attempt without an outcome: the one its lease belongs to. */
  closeAttempt: `UPDATE task_attempts SET started_at = COALESCE(@startedAt, started_at), ended_at = @endedAt,
    outcome = @outcome, error = @error
    WHERE task_id = @taskId AND outcome IS NULL`,

  listAttempts: 'SELECT * FROM task_attempts WHERE task_id = ? ORDER BY id',

  insertEvent: `INSERT INTO task_events (task_id, namespace, name, type, attempt, at, data)
    VALUES (@taskId, @namespace, @name, @type, @attempt, @at, @data)`,

  listEvents: 'SELECT * FROM task_events WHERE seq > ? ORDER BY seq LIMIT ?',
  listTaskEvents: 'SELECT * FROM task_events WHERE task_id = ? ORDER BY seq',
  // Take the cursor's lease if it is free, lapsed or already ours (see OutboxLeaseParams).
  outboxLease: `INSERT INTO outbox_cursors AS c (name, seq, owner, lease_expires_at) VALUES (:name, 0, :owner, :expiresAt)
    ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, lease_expires_at = excluded.lease_expires_at
    WHERE c.owner = excluded.owner OR c.lease_expires_at <= :now`,
  outboxRead: 'SELECT seq, owner FROM outbox_cursors WHERE name = ?',
  outboxAdvance: 'UPDATE outbox_cursors SET seq = max(seq, :seq) WHERE name = :name AND owner = :owner',

  countByState: 'SELECT state, count(*) AS count FROM tasks GROUP BY state',
} as const;

export type Params = Record<string, unknown>;

/** Every fixed statement, prepared once per connection. */
export function prepareStatements(db: Database.Database) {
  return {
    insertTask: db.prepare<Params>(SQL.insertTask),
    writeTask: db.prepare<Params, TaskRow>(SQL.writeTask),
    getTask: db.prepare<[string], TaskRow>(SQL.getTask),
    getByIdempotencyKey: db.prepare<[string, string], TaskRow>(SQL.getByIdempotencyKey),
    selectDue: db.prepare<Params, TaskRow>(SQL.selectDue),
    selectQueueDue: db.prepare<Params, TaskRow>(SQL.selectQueueDue),
    claimTask: db.prepare<Params>(SQL.claimTask),
    endTask: db.prepare<Params, TaskRow>(SQL.endTask),
    completeTask: db.prepare<Params, EventSubjectRow>(SQL.completeTask),
    releaseTask: db.prepare<Params, EventSubjectRow>(SQL.releaseTask),
    heartbeatTask: db.prepare<Params, { lease_expires_at: number }>(SQL.heartbeatTask),
    openAttempt: db.prepare<Params>(SQL.openAttempt),
    closeAttempt: db.prepare<Params>(SQL.closeAttempt),
    listAttempts: db.prepare<[string], AttemptRow>(SQL.listAttempts),
    insertEvent: db.prepare<Params>(SQL.insertEvent),
    listEvents: db.prepare<[number, number], EventRow>(SQL.listEvents),
    listTaskEvents: db.prepare<[string], EventRow>(SQL.listTaskEvents),
    outboxLease: db.prepare<[{ name: string; owner: string; expiresAt: number; now: number }]>(SQL.outboxLease),
    outboxRead: db.prepare<[string], { seq: number; owner: string | null }>(SQL.outboxRead),
    outboxAdvance: db.prepare<[{ name: string; owner: string; seq: number }]>(SQL.outboxAdvance),
    countByState: db.prepare<[], { state: TaskState; count: number }>(SQL.countByState),
  };
}
export type Statements = ReturnType<typeof prepareStatements>;

/**
 * The list query for the filters present. Only the shape varies (so each shape is prepared once
 * and cached by its key); values are always bound.
 */
export function listQuery(params: TaskListParams): { key: string; sql: string } {
  const where: string[] = [];
  if (params.namespace !== undefined) where.push('namespace = @namespace');
  if (params.state !== undefined) where.push('state = @state');
  if (params.name !== undefined) where.push('name = @name');
  if (params.scheduledAfter !== undefined) where.push('scheduled_at >= @scheduledAfter');
  if (params.scheduledBefore !== undefined) where.push('scheduled_at <= @scheduledBefore');
  if (params.after !== undefined) where.push('(scheduled_at, id) > (@afterScheduledAt, @afterId)');
  const filter = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
  return { key: where.join('|'), sql: `SELECT * FROM tasks ${filter} ORDER BY scheduled_at, id LIMIT @limit` };
}
