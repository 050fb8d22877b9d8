/**
 * The SQLite TaskStore (better-sqlite3). Work is synchronous inside one transaction per operation;
 * methods are async only because the contract serves network stores too. Writes take the write
 * lock up front (BEGIN IMMEDIATE) so processes sharing the file queue on busy_timeout instead of
 * failing when a read transaction tries to upgrade.
 */

import type { Statement } from 'better-sqlite3';
import Database from 'better-sqlite3';
import type { AttemptOutcome, Task, TaskEvent, TaskEventType, TaskState, TaskWithAttempts } from '../../core/task.ts';
import { queueOf, TASK_STATES } from '../../core/task.ts';
import type {
  EventListParams,
  OutboxAdvanceParams,
  OutboxCursor,
  OutboxLeaseParams,
  TaskCancelParams,
  TaskChangeResult,
  TaskClaimDueParams,
  TaskClaimDueResult,
  TaskCompleteParams,
  TaskCompleteResult,
  TaskCreateParams,
  TaskCreateResult,
  TaskHeartbeatParams,
  TaskHeartbeatResult,
  TaskIdParams,
  TaskListParams,
  TaskReleaseParams,
  TaskStore,
  TaskUpdateParams,
} from '../store.ts';
import { type ChangeRule, cancelRule, type EventData, retryRule, runNowRule, updateRule } from '../task-changes.ts';
import { createdTask, decideClaim, leaseExpiredData, outcomeEffect } from '../transitions.ts';
import { SQLITE_CAPABILITIES } from './capabilities.ts';
import { runMigrations } from './migrations.ts';
import type { Params, Statements, TaskRow } from './queries.ts';
import { eventData, listQuery, prepareStatements, rowToAttempt, rowToEvent, rowToTask, taskParams } from './queries.ts';

/** What an event row needs to know of its task. */
type EventSubject = Pick<Task, 'id' | 'namespace' | 'name' | 'attempts'>;

export class SqliteStore implements TaskStore {
  readonly capabilities = SQLITE_CAPABILITIES;
  private readonly db: Database.Database;
  /** Runs a callback in a transaction; created once, used deferred for reads and immediate for writes. */
  private readonly tx: Database.Transaction<(fn: () => unknown) => unknown>;
  /** Prepared on first use, since a fresh database has no tables until migrate() has run. */
  private statements: Statements | undefined;
  private readonly listStatements = new Map<string, Statement<[Params], TaskRow>>();

  private constructor(db: Database.Database) {
    this.db = db;
    this.tx = db.transaction((fn: () => unknown) => fn());
  }

  static open(options: { path: string }): SqliteStore {
    const db = new Database(options.path);
    try {
      db.pragma('journal_mode = WAL');
      // FULL: a commit survives power loss, so an acknowledged task is never lost.
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 5000');
      db.pragma('foreign_keys = ON');
    } catch (error) {
      db.close();
      throw error;
    }
    return new SqliteStore(db);
  }

  private get q(): Statements {
    this.statements ??= prepareStatements(this.db);
    return this.statements;
  }

  private write<T>(fn: () => T): T {
    return this.tx.immediate(fn) as T;
  }

  private read<T>(fn: () => T): T {
    return this.tx(fn) as T;
  }

  /** Writes one event; `attempt` is the task's attempt count after the change. */
  private event(task: EventSubject, type: TaskEventType, at: number, data: EventData = null): void {
    this.q.insertEvent.run({
      taskId: task.id,
      namespace: task.namespace,
      name: task.name,
      type,
      attempt: task.attempts,
      at,
      data: eventData(data),
    });
  }

  private closeAttempt(
    taskId: string,
    outcome: AttemptOutcome,
    endedAt: number,
    startedAt: number | null = null,
    error: string | null = null,
  ): void {
    this.q.closeAttempt.run({ taskId, outcome, endedAt, startedAt, error });
  }

  private openAttempt(task: Task, now: number): void {
    this.q.openAttempt.run({ taskId: task.id, attempt: task.attempts, leaseOwner: task.leaseOwner, claimedAt: now });
  }

  /** The process's clock: an embedded store keeps no other. */
  async timeNow(): Promise<number> {
    return Date.now();
  }

  async migrate(): Promise<void> {
    runMigrations(this.db);
  }

  async close(): Promise<void> {
    this.db.close();
  }

  async taskCreate({ tasks, now = Date.now(), claim }: TaskCreateParams): Promise<TaskCreateResult[]> {
    if (tasks.length > this.capabilities.maxBatchSize) {
      throw new RangeError(`A batch holds at most ${this.capabilities.maxBatchSize} tasks, got ${tasks.length}`);
    }
    return this.write(() => {
      const results: TaskCreateResult[] = [];
      let claimedCount = 0;
      for (const input of tasks) {
        if (input.idempotencyKey !== null) {
          const row = this.q.getByIdempotencyKey.get(input.namespace, input.idempotencyKey);
          if (row) {
            const task = rowToTask(row);
            results.push({ status: task.requestHash === input.requestHash ? 'existing' : 'conflict', task });
            continue;
          }
        }
        const claimed =
          claim !== undefined &&
          input.scheduledAt < now + claim.lookaheadMs &&
          claimedCount < claim.max &&
          queueOf(input) === null;
        const task = createdTask(input, now, claimed ? claim.lease : null);
        this.q.insertTask.run(taskParams(task));
        this.event({ ...task, attempts: 0 }, 'created', now);
        if (claimed) {
          claimedCount++;
          this.openAttempt(task, now);
          this.event(task, 'claimed', now, { lease_owner: task.leaseOwner });
        }
        results.push({ status: 'created', task, claimed });
      }
      return results;
    });
  }

  async taskGet({ id }: { id: string }): Promise<TaskWithAttempts | null> {
    return this.read(() => {
      const row = this.q.getTask.get(id);
      if (!row) return null;
      return { ...rowToTask(row), attemptLog: this.q.listAttempts.all(id).map(rowToAttempt) };
    });
  }

  async taskList(params: TaskListParams): Promise<Task[]> {
    if (params.limit <= 0) return []; // SQLite reads a negative LIMIT as "no limit"
    const { key, sql } = listQuery(params);
    let statement = this.listStatements.get(key);
    if (!statement) {
      statement = this.db.prepare<Params, TaskRow>(sql);
      this.listStatements.set(key, statement);
    }
    const rows = this.read(() =>
      statement.all({ ...params, afterScheduledAt: params.after?.scheduledAt, afterId: params.after?.id }),
    );
    return rows.map(rowToTask);
  }

  async taskCountByState(): Promise<Record<TaskState, number>> {
    const counts = Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as Record<TaskState, number>;
    for (const { state, count } of this.read(() => this.q.countByState.all())) counts[state] = count;
    return counts;
  }

  async taskClaimDue({
    lease,
    now = Date.now(),
    lookaheadMs,
    limit,
    queues = [],
  }: TaskClaimDueParams): Promise<TaskClaimDueResult> {
    const until = now + lookaheadMs;
    const result: TaskClaimDueResult = { now, claimed: [], ended: [] };
    const wanted = queues.filter((q) => q.limit > 0);
    if (limit <= 0 && wanted.length === 0) return result;
    return this.write(() => {
      const rows =
        limit > 0
          ? this.q.selectDue.all({ now, until, limit, queues: JSON.stringify(wanted.map((q) => q.queue)) })
          : [];
      for (const { queue, limit: queueLimit } of wanted) {
        rows.push(...this.q.selectQueueDue.all({ queue, until, limit: queueLimit }));
      }
      if (wanted.length > 0) rows.sort(byTimeThenId);
      for (const row of rows) {
        const task = rowToTask(row);
        if (task.state === 'running') {
          // Its holder never reported back before the lease ran out: that attempt is over.
          this.closeAttempt(task.id, 'lease_expired', now);
          this.event(task, 'lease_expired', now, leaseExpiredData(task));
        }
        const decision = decideClaim(task, now, lease);
        if (decision.verdict === 'claimed') {
          // Built from the row already read rather than RETURNING *: materializing every column
          // again cost more than the update itself (measured, 1,000-row claims).
          const claimed = decision.task;
          this.q.claimTask.run({
            id: claimed.id,
            owner: claimed.leaseOwner,
            token: claimed.leaseToken,
            expiresAt: claimed.leaseExpiresAt,
            now,
          });
          this.openAttempt(claimed, now);
          this.event(claimed, 'claimed', now, decision.data);
          result.claimed.push(claimed);
        } else {
          const error = decision.verdict === 'failed' ? decision.task.lastError : null;
          const ended = rowToTask(this.q.endTask.get({ id: task.id, state: decision.verdict, error, now }) as TaskRow);
          this.event(ended, decision.verdict, now, decision.data);
          result.ended.push(ended);
        }
      }
      return result;
    });
  }

  async taskComplete({ outcomes, now = Date.now() }: TaskCompleteParams): Promise<TaskCompleteResult[]> {
    return this.write(() =>
      outcomes.map((outcome) => {
        const effect = outcomeEffect(outcome, now);
        const subject = this.q.completeTask.get({ id: outcome.id, token: outcome.leaseToken, now, ...effect });
        if (!subject) return { id: outcome.id, applied: false };
        this.closeAttempt(outcome.id, outcome.kind, outcome.endedAt, outcome.startedAt, effect.error);
        this.event(subject, effect.event, now, effect.data);
        return { id: outcome.id, applied: true };
      }),
    );
  }

  async taskRelease({ leases, now = Date.now() }: TaskReleaseParams): Promise<TaskCompleteResult[]> {
    return this.write(() =>
      leases.map(({ id, leaseToken }) => {
        const subject = this.q.releaseTask.get({ id, token: leaseToken, now });
        if (!subject) return { id, applied: false };
        this.closeAttempt(id, 'released', now);
        this.event(subject, 'released', now);
        return { id, applied: true };
      }),
    );
  }

  async taskHeartbeat({ leases, now = Date.now() }: TaskHeartbeatParams): Promise<TaskHeartbeatResult[]> {
    return this.write(() =>
      leases.map(({ id, leaseToken, extendMs }) => {
        const row = this.q.heartbeatTask.get({ id, token: leaseToken, now, expiresAt: now + extendMs });
        return { id, applied: row !== undefined, leaseExpiresAt: row?.lease_expires_at ?? null };
      }),
    );
  }

  /** Read, check and rewrite one task in one write transaction, by one of the shared change rules. */
  private change(id: string, now: number, rule: ChangeRule): TaskChangeResult {
    return this.write((): TaskChangeResult => {
      const row = this.q.getTask.get(id);
      if (!row) return { status: 'not_found' };
      const current = rowToTask(row);
      const change = rule(current, now);
      if (!change) return { status: 'invalid_state', task: current };
      const task = rowToTask(this.q.writeTask.get(taskParams({ ...change.task, updatedAt: now })) as TaskRow);
      if (change.attemptOutcome) this.closeAttempt(id, change.attemptOutcome, now);
      this.event(task, change.event, now, change.data);
      return { status: 'ok', task };
    });
  }

  async taskCancel({ id, now = Date.now(), leaseToken }: TaskCancelParams): Promise<TaskChangeResult> {
    return this.change(id, now, cancelRule(leaseToken));
  }

  async taskUpdate({ id, now = Date.now(), changes, leaseToken }: TaskUpdateParams): Promise<TaskChangeResult> {
    return this.change(id, now, updateRule(changes, leaseToken));
  }

  async taskRetry({ id, now = Date.now() }: TaskIdParams): Promise<TaskChangeResult> {
    return this.change(id, now, retryRule);
  }

  async taskRunNow({ id, now = Date.now() }: TaskIdParams): Promise<TaskChangeResult> {
    return this.change(id, now, runNowRule);
  }

  async taskEvents({ id }: { id: string }): Promise<TaskEvent[]> {
    return this.read(() => this.q.listTaskEvents.all(id)).map(rowToEvent);
  }

  async eventList({ afterSeq, limit }: EventListParams): Promise<TaskEvent[]> {
    if (limit <= 0) return [];
    return this.read(() => this.q.listEvents.all(afterSeq, limit)).map(rowToEvent);
  }

  async outboxLease({ name, owner, ttlMs, now = Date.now() }: OutboxLeaseParams): Promise<OutboxCursor> {
    return this.write(() => {
      this.q.outboxLease.run({ name, owner, expiresAt: now + ttlMs, now });
      const row = this.q.outboxRead.get(name) as { seq: number; owner: string | null };
      return { held: row.owner === owner, seq: row.seq };
    });
  }

  async outboxAdvance({ name, owner, seq }: OutboxAdvanceParams): Promise<boolean> {
    return this.write(() => this.q.outboxAdvance.run({ name, owner, seq }).changes > 0);
  }
}

function byTimeThenId(a: TaskRow, b: TaskRow): number {
  return a.scheduled_at - b.scheduled_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
