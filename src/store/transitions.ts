/**
 * What a claim and an outcome do to a task, as pure functions: the drivers that decide in code
 * (SQLite, DynamoDB) share them; the PostgreSQL driver states the same rules in SQL
 * (queries/claim-due.sql, queries/complete.sql), and the conformance suite holds all three to them.
 */
import { newLeaseToken } from '../core/ids.ts';
import type { NewTask, Task, TaskEventType } from '../core/task.ts';
import type { LeaseTerms, TaskOutcome } from './store.ts';
import { leaseExpiry } from './store.ts';
import { type EventData, NO_LEASE } from './task-changes.ts';

export interface OutcomeEffect {
  state: 'succeeded' | 'scheduled' | 'failed' | 'expired';
  scheduledAt: number | null;
  error: string | null;
  finishedAt: number | null;
  event: TaskEventType;
  data: EventData;
}

/** How an outcome sets the task, and the event it writes. */
export function outcomeEffect(outcome: TaskOutcome, now: number): OutcomeEffect {
  switch (outcome.kind) {
    case 'retry': {
      const { error, retryAt } = outcome;
      const data = { error, retry_at: retryAt };
      return { state: 'scheduled', scheduledAt: retryAt, error, finishedAt: null, event: 'retry_scheduled', data };
    }
    case 'failed':
      return {
        state: 'failed',
        scheduledAt: null,
        error: outcome.error,
        finishedAt: now,
        event: 'failed',
        data: { error: outcome.error },
      };
    default:
      return { state: outcome.kind, scheduledAt: null, error: null, finishedAt: now, event: outcome.kind, data: null };
  }
}

/** The event that records a lapsed lease (its holder never reported back). */
export function leaseExpiredData(task: Task): EventData {
  return { lease_owner: task.leaseOwner, lease_expires_at: task.leaseExpiresAt };
}

/**
 * A task as created at `now`: scheduled, or — create-and-claim — already running, leased to
 * `lease` with its first attempt counted.
 */
export function createdTask(input: NewTask, now: number, lease: LeaseTerms | null): Task {
  const task: Task = {
    ...input,
    state: 'scheduled',
    attempts: 0,
    ...NO_LEASE,
    lastError: null,
    createdAt: now,
    updatedAt: now,
    finishedAt: null,
  };
  if (lease === null) return task;
  return {
    ...task,
    state: 'running',
    attempts: 1,
    leaseOwner: lease.owner,
    leaseToken: newLeaseToken(),
    leaseExpiresAt: leaseExpiry(input, now, lease.graceMs),
  };
}

export type ClaimDecision =
  | { verdict: 'claimed'; task: Task; data: EventData }
  | { verdict: 'expired' | 'failed'; task: Task; data: EventData };

/**
 * A due task, claimed by `lease` at `now`: ended `expired` when its deadline has passed, ended
 * `failed` when a crashed run (lapsed lease) used its last attempt — counting claims, not outcomes,
 * is what stops a task that kills its node from looping — and otherwise leased, one more attempt.
 */
export function decideClaim(task: Task, now: number, lease: LeaseTerms): ClaimDecision {
  const crashed = task.state === 'running';
  if (task.deadlineAt !== null && task.deadlineAt < now) {
    const ended: Task = { ...task, state: 'expired', leaseOwner: null, leaseToken: null, leaseExpiresAt: null };
    return {
      verdict: 'expired',
      task: { ...ended, finishedAt: now, updatedAt: now },
      data: { deadline_at: task.deadlineAt },
    };
  }
  if (crashed && task.attempts >= task.maxAttempts) {
    const error =
      `lease expired on attempt ${task.attempts} of ${task.maxAttempts}: the node running the task ` +
      'stopped before reporting an outcome, and no attempts are left';
    const ended: Task = {
      ...task,
      state: 'failed',
      leaseOwner: null,
      leaseToken: null,
      leaseExpiresAt: null,
      lastError: error,
      finishedAt: now,
      updatedAt: now,
    };
    return { verdict: 'failed', task: ended, data: { error } };
  }
  const claimed: Task = {
    ...task,
    state: 'running',
    attempts: task.attempts + 1,
    leaseOwner: lease.owner,
    leaseToken: newLeaseToken(),
    leaseExpiresAt: leaseExpiry(task, now, lease.graceMs),
    updatedAt: now,
  };
  return { verdict: 'claimed', task: claimed, data: { lease_owner: lease.owner } };
}
