/**
 * The PostgreSQL TaskStore (node-postgres; docs/adr/0005-postgresql-client.md says why that client).
 *
 * - Every operation is one statement (the files in ./queries), so it is atomic on its own and
 *   costs one round trip, however many tasks it touches: claims lock due rows FOR UPDATE SKIP
 *   LOCKED, batches travel as arrays (unnest). Edits are the exception: read, decide in
 *   TypeScript (./task-changes.ts), then write fenced by the row version read — two statements,
 *   never a lock held between them.
 * - Time: every statement takes `now`, and without it reads the database clock, so nodes whose
 *   clocks disagree still agree on when a lease has expired.
 * - No operation holds a pool connection while waiting for another, so a pool of one cannot
 *   deadlock. A dead server fails calls within the connect timeout; the pool replaces broken
 *   connections by itself once the server is back.
 * - Notifications: see ./notifier.ts.
 */
import pg from 'pg';
import type { Task, TaskEvent, TaskState, TaskWithAttempts } from '../../core/task.ts';
import { TASK_STATES } from '../../core/task.ts';
import type {
  EventListParams,
  OutboxAdvanceParams,
  OutboxCursor,
  OutboxLeaseParams,
  StoreCapabilities,
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
import { type ChangeRule, cancelRule, retryRule, runNowRule, updateRule } from '../task-changes.ts';
import {
  CONNECT_TIMEOUT_MS,
  type PostgresConfig,
  parsePostgresUrl,
  QUERY_TIMEOUT_MS,
  STATEMENT_TIMEOUT_MS,
  sessionSettingsSql,
} from './connection-config.ts';
import { runPostgresMigrations } from './migrations.ts';
import { Notifier, type TasksAvailableListener } from './notifier.ts';
import type { AttemptRow, EventRow, Statement, TaskRow } from './queries.ts';
import { completeParams, listQuery, rowToAttempt, rowToEvent, rowToTask, SQL, toJson } from './queries.ts';

export interface PostgresStoreOptions {
  /** `postgres://user@host:port/database[?schema=NAME&pool=N]` */
  url: string;
  /** How long opening waits for its own test notification (default 3 s). */
  notifyCheckTimeoutMs?: number;
}

const INT8_OID = 20;
/** bigint columns are epoch ms or counts: far below 2^53, so a number, not node-postgres's string. */
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * Batches larger than this run as unnamed statements, planned afresh for their size; smaller
 * ones as prepared statements, whose plan PostgreSQL may cache. After five runs it may switch a
 * prepared statement to a generic plan, made without the parameters' values: that plan takes
 * every array for 10 rows, and for 1,000 it joins two of the create's intermediate results by
 * nested loop (a 1,000-task create: ~100 ms planned for its size, 350–600 ms generic, on the
 * reference machine). Planning costs a single-task create ~2.5 ms (1.7 ms cached, 4.2 ms not).
 */
export const CACHED_PLAN_MAX_ROWS = 10;

/** A statement that raced another transaction rolls back and runs again, at most this often. */
const MAX_STATEMENT_RUNS = 5;
const SERIALIZATION_FAILURE = '40001';

type CreateRow = {
  raced: boolean | null;
  created: (TaskRow & { ord: number })[];
  existing: (TaskRow & { ord: number })[];
};

export class PostgresStore implements TaskStore {
  readonly capabilities: StoreCapabilities = {
    supportsNotify: true,
    maxBatchSize: 1000,
    claimBatchSize: 1000,
    serverClock: true,
    eventLog: true,
    workerQueues: true,
  };
  readonly config: PostgresConfig;
  private readonly pool: pg.Pool;
  private readonly notifier: Notifier;
  private closed = false;

  private constructor(config: PostgresConfig) {
    this.config = config;
    const connection = { connectionString: config.connectionString, types: TYPES, keepAlive: true };
    this.pool = new pg.Pool({
      ...connection,
      max: config.poolSize,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      query_timeout: QUERY_TIMEOUT_MS,
      onConnect: async (client) => {
        await client.query(sessionSettingsSql(config.schema, STATEMENT_TIMEOUT_MS));
      },
    });
    // An idle connection that breaks (server restart) is dropped by the pool; the next call opens another.
    this.pool.on('error', () => {});
    this.notifier = new Notifier({
      client: {
        ...connection,
        connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
        query_timeout: CONNECT_TIMEOUT_MS * 2,
      },
      channel: config.channel,
      notify: (payload) => this.pool.query('SELECT pg_notify($1, $2)', [config.channel, payload]),
    });
  }

  /**
   * Checks that notifications reach this node, then migrates: behind a pooler in transaction mode
   * the store refuses before it writes anything.
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const store = new PostgresStore(parsePostgresUrl(options.url));
    try {
      await store.notifier.start();
      await store.notifier.verify(options.notifyCheckTimeoutMs ?? 3_000);
      await store.migrate();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /** One statement; `rows` says how many rows it works on, when that varies (see CACHED_PLAN_MAX_ROWS). */
  private async run<R extends pg.QueryResultRow>(statement: Statement, values: unknown[], rows = 1): Promise<R[]> {
    if (this.closed) throw new Error('The postgres store is closed');
    const name = rows <= CACHED_PLAN_MAX_ROWS ? statement.name : undefined;
    const result = await this.pool.query<R>({ name, text: statement.text, values });
    return result.rows;
  }

  /** The database server's clock: what every node's leases and timers are judged by. */
  async timeNow(): Promise<number> {
    const result = await this.pool.query<{ now: string }>(
      'SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now',
    );
    return Number(result.rows[0]?.now);
  }

  async migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await runPostgresMigrations(client, this.config.schema);
      client.release();
    } catch (error) {
      client.release(error instanceof Error ? error : true);
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.notifier.close();
    await this.pool.end();
  }

  onTasksAvailable(listener: TasksAvailableListener): () => void {
    return this.notifier.subscribe(listener);
  }

  async taskCreate({ tasks, now, claim }: TaskCreateParams): Promise<TaskCreateResult[]> {
    if (tasks.length > this.capabilities.maxBatchSize) {
      throw new RangeError(`A batch holds at most ${this.capabilities.maxBatchSize} tasks, got ${tasks.length}`);
    }
    if (tasks.length === 0) return [];
    const values = [
      now ?? null,
      tasks.map((t) => t.id),
      tasks.map((t) => t.namespace),
      tasks.map((t) => t.name),
      tasks.map((t) => t.description),
      tasks.map((t) => toJson(t.payload)),
      tasks.map((t) => toJson(t.target)),
      tasks.map((t) => t.scheduledAt),
      tasks.map((t) => t.deadlineAt),
      tasks.map((t) => t.maxAttempts),
      tasks.map((t) => t.timeoutMs),
      tasks.map((t) => JSON.stringify(t.backoff)),
      tasks.map((t) => t.idempotencyKey),
      tasks.map((t) => t.requestHash),
      claim && claim.max > 0 ? claim.lease.owner : null,
      claim?.lookaheadMs ?? 0,
      claim?.max ?? 0,
      claim?.lease.graceMs ?? 0,
      this.config.channel,
    ];
    const [row] = await this.retryingRaces(() => this.run<CreateRow>(SQL.create, values, tasks.length));
    if (!row) throw new Error('the create statement returned no row');
    const byPosition = new Map<number, TaskCreateResult>();
    for (const created of row.created) {
      const task = rowToTask(created);
      byPosition.set(created.ord, { status: 'created', task, claimed: task.state === 'running' });
    }
    for (const found of row.existing) {
      const task = rowToTask(found);
      const input = tasks[found.ord - 1];
      byPosition.set(found.ord, { status: task.requestHash === input?.requestHash ? 'existing' : 'conflict', task });
    }
    // The rest repeat a key an earlier task of this batch took: answer against that task.
    const firstByKey = new Map<string, Task>();
    return tasks.map((input, i) => {
      const key = input.idempotencyKey === null ? null : JSON.stringify([input.namespace, input.idempotencyKey]);
      const result = byPosition.get(i + 1);
      if (result) {
        if (key !== null && !firstByKey.has(key)) firstByKey.set(key, result.task);
        return result;
      }
      const first = key === null ? undefined : firstByKey.get(key);
      if (!first) throw new Error(`the create statement left task ${i + 1} of the batch unanswered`);
      return { status: first.requestHash === input.requestHash ? 'existing' : 'conflict', task: first };
    });
  }

  /** Runs a statement again when it rolled itself back after racing another transaction. */
  private async retryingRaces<T>(attempt: () => Promise<T>): Promise<T> {
    for (let run = 1; ; run++) {
      try {
        return await attempt();
      } catch (error) {
        const raced = (error as { code?: unknown }).code === SERIALIZATION_FAILURE;
        if (!raced || run >= MAX_STATEMENT_RUNS) throw error;
      }
    }
  }

  async taskGet({ id }: { id: string }): Promise<TaskWithAttempts | null> {
    const [row] = await this.run<TaskRow & { attempt_log: AttemptRow[] }>(SQL.getTask, [id]);
    if (!row) return null;
    return { ...rowToTask(row), attemptLog: row.attempt_log.map(rowToAttempt) };
  }

  async taskList(params: TaskListParams): Promise<Task[]> {
    if (params.limit <= 0) return [];
    const query = listQuery(params);
    return (await this.run<TaskRow>(query, query.values)).map(rowToTask);
  }

  async taskCountByState(): Promise<Record<TaskState, number>> {
    const counts = Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as Record<TaskState, number>;
    for (const { state, count } of await this.run<{ state: TaskState; count: number }>(SQL.countByState, [])) {
      counts[state] = count;
    }
    return counts;
  }

  async taskClaimDue({ lease, now, lookaheadMs, limit, queues = [] }: TaskClaimDueParams): Promise<TaskClaimDueResult> {
    const wanted = queues.filter((q) => q.limit > 0);
    const rows = await this.run<TaskRow & { claim_now: number; verdict: string | null }>(
      SQL.claimDue,
      [
        now ?? null,
        lookaheadMs,
        Math.max(0, limit),
        lease.owner,
        lease.graceMs,
        wanted.map((q) => q.queue),
        wanted.map((q) => q.limit),
      ],
      limit + wanted.reduce((sum, q) => sum + q.limit, 0),
    );
    const result: TaskClaimDueResult = { now: rows[0]?.claim_now ?? now ?? Date.now(), claimed: [], ended: [] };
    for (const row of rows) {
      if (row.verdict === null) continue; // the clock row of a claim that found nothing
      (row.verdict === 'claimed' ? result.claimed : result.ended).push(rowToTask(row));
    }
    return result;
  }

  async taskComplete({ outcomes, now }: TaskCompleteParams): Promise<TaskCompleteResult[]> {
    if (outcomes.length === 0) return [];
    const [row] = await this.run<{ applied: number[] }>(
      SQL.complete,
      completeParams(outcomes, now ?? null, this.config.channel),
      outcomes.length,
    );
    const applied = new Set(row?.applied);
    return outcomes.map((outcome, i) => ({ id: outcome.id, applied: applied.has(i + 1) }));
  }

  async taskRelease({ leases, now }: TaskReleaseParams): Promise<TaskCompleteResult[]> {
    if (leases.length === 0) return [];
    const [row] = await this.run<{ applied: number[] }>(
      SQL.release,
      [now ?? null, leases.map((l) => l.id), leases.map((l) => l.leaseToken), this.config.channel],
      leases.length,
    );
    const applied = new Set(row?.applied);
    return leases.map(({ id }, i) => ({ id, applied: applied.has(i + 1) }));
  }

  async taskHeartbeat({ leases, now }: TaskHeartbeatParams): Promise<TaskHeartbeatResult[]> {
    if (leases.length === 0) return [];
    const rows = await this.run<{ ord: number; lease_expires_at: number }>(
      SQL.heartbeat,
      [now ?? null, leases.map((l) => l.id), leases.map((l) => l.leaseToken), leases.map((l) => l.extendMs)],
      leases.length,
    );
    const extended = new Map(rows.map((r) => [r.ord, r.lease_expires_at]));
    return leases.map(({ id }, i) => ({
      id,
      applied: extended.has(i + 1),
      leaseExpiresAt: extended.get(i + 1) ?? null,
    }));
  }

  /**
   * Read the task, decide, write it back if the row is still the version read (xmin); if another
   * transaction changed it in between, decide again on what it wrote.
   */
  private async change(
    id: string,
    now: number | undefined,
    rule: ChangeRule,
    notify: boolean,
  ): Promise<TaskChangeResult> {
    for (let run = 1; run <= MAX_STATEMENT_RUNS; run++) {
      const [row] = await this.run<TaskRow & { row_version: string; db_now: number }>(SQL.readTask, [id]);
      if (!row) return { status: 'not_found' };
      const current = rowToTask(row);
      const at = now ?? row.db_now;
      const change = rule(current, at);
      if (!change) return { status: 'invalid_state', task: current };
      const t = change.task;
      const [written] = await this.run<TaskRow>(SQL.writeTask, [
        id,
        row.row_version,
        t.name,
        t.description,
        toJson(t.payload),
        toJson(t.target),
        t.state,
        t.scheduledAt,
        t.deadlineAt,
        t.maxAttempts,
        t.timeoutMs,
        JSON.stringify(t.backoff),
        t.attempts,
        t.leaseOwner,
        t.leaseToken,
        t.leaseExpiresAt,
        t.lastError,
        at,
        t.finishedAt,
        change.event,
        toJson(change.data),
        change.attemptOutcome,
        notify ? this.config.channel : null,
      ]);
      if (written) return { status: 'ok', task: rowToTask(written) };
    }
    throw new Error(`task ${id} kept changing under an edit; gave up after ${MAX_STATEMENT_RUNS} tries`);
  }

  taskCancel({ id, now, leaseToken }: TaskCancelParams): Promise<TaskChangeResult> {
    return this.change(id, now, cancelRule(leaseToken), false);
  }

  taskUpdate({ id, now, changes, leaseToken }: TaskUpdateParams): Promise<TaskChangeResult> {
    return this.change(id, now, updateRule(changes, leaseToken), true);
  }

  taskRetry({ id, now }: TaskIdParams): Promise<TaskChangeResult> {
    return this.change(id, now, retryRule, true);
  }

  taskRunNow({ id, now }: TaskIdParams): Promise<TaskChangeResult> {
    return this.change(id, now, runNowRule, true);
  }

  async taskEvents({ id }: { id: string }): Promise<TaskEvent[]> {
    return (await this.run<EventRow>(SQL.listTaskEvents, [id])).map(rowToEvent);
  }

  /**
   * Events in commit order: first the horizon (every seq at or below it belongs to a finished
   * transaction; see task_events_horizon in the migration), then, in a newer snapshot, the events
   * up to it.
   */
  async eventList({ afterSeq, limit }: EventListParams): Promise<TaskEvent[]> {
    if (limit <= 0) return [];
    const [horizon] = await this.run<{ horizon: number }>(SQL.eventsHorizon, []);
    const until = horizon?.horizon ?? 0;
    if (until <= afterSeq) return [];
    return (await this.run<EventRow>(SQL.listEvents, [afterSeq, until, limit])).map(rowToEvent);
  }

  async outboxLease({ name, owner, ttlMs, now }: OutboxLeaseParams): Promise<OutboxCursor> {
    const [row] = await this.run<{ seq: number; owner: string | null }>(SQL.outboxLease, [
      name,
      owner,
      now ?? null,
      ttlMs,
    ]);
    return { held: row?.owner === owner, seq: row?.seq ?? 0 };
  }

  async outboxAdvance({ name, owner, seq }: OutboxAdvanceParams): Promise<boolean> {
    return (await this.run(SQL.outboxAdvance, [name, owner, seq])).length > 0;
  }
}
