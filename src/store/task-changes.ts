/**
 * What cancel, update, retry and run-now do to a task, as pure functions shared by every driver:
 * a store reads the task, asks one of these for the change, and writes it atomically (SQLite in
 * one write transaction, PostgreSQL fenced by the row version it read).
 */
import type { AttemptOutcome, Task, TaskEventType } from '../core/task.ts';
import type { TaskEdit } from './store.ts';

export type EventData = Record<string, unknown> | null;

/** What an operation does to a task it found in an acceptable state. */
export interface Change {
  task: Task;
  event: TaskEventType;
  data: EventData;
  /** Close the open attempt with this outcome (the caller held the task's lease). */
  attemptOutcome: AttemptOutcome | null;
}

/** Undefined when the task's state forbids the operation. */
export type ChangeRule = (task: Task, now: number) => Change | undefined;

export const NO_LEASE = { leaseOwner: null, leaseToken: null, leaseExpiresAt: null } as const;

const EDITABLE_FIELDS = [
  'name',
  'description',
  'payload',
  'target',
  'scheduledAt',
  'deadlineAt',
  'maxAttempts',
  'timeoutMs',
  'backoff',
] as const satisfies readonly (keyof TaskEdit)[];

function holdsLease(task: Task, leaseToken: string | undefined): boolean {
  return task.state === 'running' && leaseToken !== undefined && task.leaseToken === leaseToken;
}

function snakeCase(field: string): string {
  return field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** scheduled → canceled; running → canceled for the holder of a not-yet-started lease. */
export function cancelRule(leaseToken: string | undefined): ChangeRule {
  return (task, now) => {
    if (task.state === 'scheduled') {
      return {
        task: { ...task, state: 'canceled', finishedAt: now },
        event: 'canceled',
        data: null,
        attemptOutcome: null,
      };
    }
    if (holdsLease(task, leaseToken)) {
      return {
        task: { ...task, ...NO_LEASE, state: 'canceled', finishedAt: now },
        event: 'canceled',
        data: null,
        attemptOutcome: 'canceled',
      };
    }
    return undefined;
  };
}

/** Edits a scheduled task, or a not-yet-started one for its holder (the lease is then given back). */
export function updateRule(changes: TaskEdit, leaseToken: string | undefined): ChangeRule {
  const fields = EDITABLE_FIELDS.filter((field) => changes[field] !== undefined);
  const edits = Object.fromEntries(fields.map((field) => [field, changes[field]])) as Partial<Task>;
  return (task) => {
    const held = holdsLease(task, leaseToken);
    if (task.state !== 'scheduled' && !held) return undefined;
    const edited: Task = { ...task, ...edits };
    const onlyRescheduled = fields.length === 1 && fields[0] === 'scheduledAt';
    const event = onlyRescheduled ? 'rescheduled' : 'updated';
    const data: EventData = onlyRescheduled
      ? { scheduled_at: edited.scheduledAt, previous_scheduled_at: task.scheduledAt }
      : { fields: fields.map(snakeCase) };
    if (!held) return { task: edited, event, data, attemptOutcome: null };
    // The holder had not started it: hand the task back with the attempt refunded, edits applied.
    return {
      task: { ...edited, ...NO_LEASE, state: 'scheduled', attempts: task.attempts - 1 },
      event,
      data: { ...data, lease_released: true },
      attemptOutcome: 'released',
    };
  };
}

/** failed → scheduled now, with a fresh set of attempts. */
export const retryRule: ChangeRule = (task, now) =>
  task.state === 'failed'
    ? {
        task: { ...task, state: 'scheduled', scheduledAt: now, attempts: 0, finishedAt: null },
        event: 'retried',
        data: null,
        attemptOutcome: null,
      }
    : undefined;

/** scheduled → scheduled now. */
export const runNowRule: ChangeRule = (task, now) =>
  task.state === 'scheduled'
    ? {
        task: { ...task, scheduledAt: now },
        event: 'run_now',
        data: { previous_scheduled_at: task.scheduledAt },
        attemptOutcome: null,
      }
    : undefined;
