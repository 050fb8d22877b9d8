/** Runs the shared TaskStore conformance suite against PostgreSQL, plus the PostgreSQL-only checks. */
import pg from 'pg';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { uuidv7 } from '../../src/core/ids.ts';
import type { NewTask, Task } from '../../src/core/task.ts';
import { DEFAULT_BACKOFF } from '../../src/core/task.ts';
import { openStore } from '../../src/store/open-store.ts';
import { readPostgresMigrations, runPostgresMigrations } from '../../src/store/postgres/migrations.ts';
import { Notifier } from '../../src/store/postgres/notifier.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { SQL } from '../../src/store/postgres/queries.ts';
import type { TaskClaimDueResult, TaskStore } from '../../src/store/store.ts';
import { adminQuery, dropSchema, randomSchema, startPostgresServer, storeUrl } from '../helpers/postgres-server.ts';
import { waitUntil } from '../helpers/wait.ts';
import { describeTaskStoreConformance } from './task-store.conformance.ts';

const SERVER = inject('postgresUrl');

describeTaskStoreConformance('postgres', async () => {
  const schema = randomSchema();
  const store = await PostgresStore.open({ url: storeUrl(SERVER, { schema }) });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await dropSchema(SERVER, schema);
    },
  };
});

const T0 = Date.UTC(2026, 11, 1);
const LEASE = { owner: 'node-a', graceMs: 5_000 };

function newTask(overrides: Partial<NewTask> = {}): NewTask {
  return {
    id: uuidv7(),
    namespace: 'default',
    name: 'pg-test',
    description: null,
    payload: { n: 1 },
    target: null,
    scheduledAt: T0,
    deadlineAt: null,
    maxAttempts: 3,
    timeoutMs: 30_000,
    backoff: DEFAULT_BACKOFF,
    idempotencyKey: null,
    requestHash: null,
    ...overrides,
  };
}

/** The next value the store's listener hears that `match` accepts; rejects after `timeoutMs`. */
function nextNotification(store: TaskStore, match: (earliest: number) => boolean, timeoutMs = 5_000): Promise<number> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const unsubscribe = subscribe(store, (earliest) => {
      if (!match(earliest)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(earliest);
    });
    timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no matching notification within ${timeoutMs} ms`));
    }, timeoutMs);
  });
}

function subscribe(store: TaskStore, listener: (earliest: number) => void): () => void {
  const unsubscribe = store.onTasksAvailable?.(listener);
  if (!unsubscribe) throw new Error('the store cannot notify');
  return unsubscribe;
}

function must<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('expected a value');
  return value;
}

/** The database clock, in epoch ms. */
async function databaseNow(url: string): Promise<number> {
  const [row] = await adminQuery<{ now: string }>(
    url,
    'SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now',
  );
  return Number(row?.now);
}

describe('postgres store', () => {
  const opened: TaskStore[] = [];
  const schemas: string[] = [];
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    for (const schema of schemas.splice(0)) await dropSchema(SERVER, schema);
  });

  async function open(options: Record<string, string> = {}, schema = randomSchema()): Promise<PostgresStore> {
    if (!schemas.includes(schema)) schemas.push(schema);
    const store = await PostgresStore.open({ url: storeUrl(SERVER, { schema, ...options }) });
    opened.push(store);
    return store;
  }

  it('opens postgres:// and postgresql:// URLs through openStore, migrated', async () => {
    for (const scheme of ['postgres:', 'postgresql:', 'PostgreSQL:']) {
      const schema = randomSchema();
      schemas.push(schema);
      const url = new URL(storeUrl(SERVER, { schema }));
      const store = await openStore(`${scheme}${url.toString().slice(url.protocol.length)}`);
      opened.push(store);
      expect(store.capabilities).toEqual({
        supportsNotify: true,
        maxBatchSize: 1000,
        claimBatchSize: 1000,
        serverClock: true,
        eventLog: true,
        workerQueues: true,
      });
      expect(await store.taskCountByState()).toMatchObject({ scheduled: 0 });
    }
  });

  it('keeps its tables in the schema the URL names', async () => {
    const schema = randomSchema();
    await open({}, schema);
    const tables = await adminQuery<{ table_name: string }>(
      SERVER,
      'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
      [schema],
    );
    expect(tables.map((t) => t.table_name)).toEqual([
      'outbox_cursors',
      'schema_migrations',
      'task_attempts',
      'task_events',
      'tasks',
    ]);
  });

  it('rejects bad schema and pool options without echoing the password', async () => {
    const withPassword = 'postgres://user:secret@127.0.0.1:1/db';
    await expect(openStore(`${withPassword}?schema=Bad-Name`)).rejects.toThrow(/schema must be lower-case/);
    await expect(openStore(`${withPassword}?pool=0`)).rejects.toThrow(/pool must be a whole number/);
    await expect(openStore(`${withPassword}?pool=0`)).rejects.not.toThrow(/secret/);
  });

  it('applies each migration once when three nodes open the same schema together', async () => {
    const schema = randomSchema();
    await Promise.all([open({}, schema), open({}, schema), open({}, schema)]);
    const rows = await adminQuery<{ version: number }>(
      SERVER,
      `SELECT version FROM "${schema}".schema_migrations ORDER BY version`,
    );
    expect(rows).toEqual(readPostgresMigrations().map((m) => ({ version: m.version })));
    const client = new pg.Client({ connectionString: SERVER });
    await client.connect();
    try {
      expect(await runPostgresMigrations(client, schema)).toEqual([]);
    } finally {
      await client.end();
    }
  });

  it('tells other nodes when tasks become schedulable: created, released, retried', async () => {
    const schema = randomSchema();
    const [a, b] = await Promise.all([open({}, schema), open({}, schema)]);

    const created = nextNotification(b, (t) => t === T0 + 5);
    await a.taskCreate({ tasks: [newTask({ scheduledAt: T0 + 5 }), newTask({ scheduledAt: T0 + 9 })], now: T0 });
    expect(await created).toBe(T0 + 5);

    const [claimed] = (await a.taskClaimDue({ lease: LEASE, now: T0 + 5, lookaheadMs: 1, limit: 1 })).claimed;
    const released = nextNotification(b, (t) => t === T0 + 5);
    await a.taskRelease({
      leases: [{ id: must(claimed).id, leaseToken: must(claimed?.leaseToken ?? undefined) }],
      now: T0 + 6,
    });
    expect(await released).toBe(T0 + 5);

    const task = await createClaimedFailed(a);
    const retried = nextNotification(b, (t) => t === T0 + 60_000);
    expect((await a.taskRetry({ id: task.id, now: T0 + 60_000 })).status).toBe('ok');
    expect(await retried).toBe(T0 + 60_000);
  });

  async function createClaimedFailed(store: TaskStore): Promise<Task> {
    const [result] = await store.taskCreate({
      tasks: [newTask({ maxAttempts: 1, scheduledAt: T0 - 1_000 })],
      now: T0,
      claim: { lease: LEASE, lookaheadMs: 1, max: 1 },
    });
    const task = must(result?.task);
    await store.taskComplete({
      outcomes: [
        {
          id: task.id,
          leaseToken: must(task.leaseToken ?? undefined),
          startedAt: T0,
          endedAt: T0,
          kind: 'failed',
          error: 'x',
        },
      ],
      now: T0,
    });
    return task;
  }

  it('does not wake nodes for tasks created already claimed', async () => {
    const schema = randomSchema();
    const [a, b] = await Promise.all([open({}, schema), open({}, schema)]);
    const heard: number[] = [];
    subscribe(b, (t) => heard.push(t));
    await a.taskCreate({ tasks: [newTask()], now: T0, claim: { lease: LEASE, lookaheadMs: 1, max: 1 } });
    // A later notification, sent after the claim committed, arrives after any the claim sent.
    const marker = nextNotification(b, (t) => t === T0 + 777);
    await a.taskCreate({ tasks: [newTask({ scheduledAt: T0 + 777 })], now: T0 });
    await marker;
    expect(heard).toEqual([T0 + 777]);
  });

  it('judges leases by the database clock, not the process clock', async () => {
    const store = await open();
    const dbBefore = await databaseNow(SERVER);
    await store.taskCreate({ tasks: [newTask({ scheduledAt: dbBefore, timeoutMs: 1_000 })], now: dbBefore });
    // This process's clock runs an hour fast: a store using it would lease from the wrong time.
    const spy = vi.spyOn(Date, 'now').mockImplementation(() => dbBefore + 3_600_000);
    let result: TaskClaimDueResult;
    try {
      result = await store.taskClaimDue({ lease: LEASE, lookaheadMs: 0, limit: 10 });
    } finally {
      spy.mockRestore();
    }
    const dbAfter = await databaseNow(SERVER);
    expect(result.now).toBeGreaterThanOrEqual(dbBefore);
    expect(result.now).toBeLessThanOrEqual(dbAfter);
    const [claimed] = result.claimed;
    expect(claimed?.leaseExpiresAt).toBe(result.now + 1_000 + LEASE.graceMs);
  });

  it('serves 100 concurrent creates, claims and completes through a pool of 2 without deadlock', async () => {
    const store = await open({ pool: '2' });
    const worker = async (i: number) => {
      await store.taskCreate({ tasks: [newTask({ scheduledAt: T0 + i })], now: T0 });
      const { claimed } = await store.taskClaimDue({ lease: LEASE, now: T0 + 1_000, lookaheadMs: 0, limit: 1 });
      await store.taskComplete({
        outcomes: claimed.map((t) => ({
          id: t.id,
          leaseToken: must(t.leaseToken ?? undefined),
          startedAt: T0 + 1_000,
          endedAt: T0 + 1_001,
          kind: 'succeeded' as const,
        })),
        now: T0 + 1_001,
      });
      return claimed.length;
    };
    const claimedCounts = await Promise.all(Array.from({ length: 100 }, (_, i) => worker(i)));
    const counts = await store.taskCountByState();
    expect(counts.succeeded).toBe(claimedCounts.reduce((a, b) => a + b, 0));
    expect(counts.succeeded + counts.scheduled).toBe(100);
    expect(counts.running).toBe(0);
  });

  it('claims through the partial index of scheduled tasks, not a scan of the table', async () => {
    const schema = randomSchema();
    await open({}, schema);
    // Finished tasks are the bulk of a long-lived table; live nodes hold running tasks whose leases
    // have not expired; a few leases have (their nodes died).
    const insert = (count: number, state: string, leaseFrom: number | null) =>
      adminQuery(
        SERVER,
        `INSERT INTO "${schema}".tasks (id, namespace, name, state, scheduled_at, max_attempts, timeout_ms, backoff,
           lease_owner, lease_token, lease_expires_at, created_at, updated_at, finished_at)
         SELECT $2 || g, 'default', 'bulk', $2, $3::bigint + g, 3, 30000, '{}',
           CASE WHEN $4::bigint IS NOT NULL THEN 'node' END, CASE WHEN $4::bigint IS NOT NULL THEN 't' || g END,
           $4::bigint + g, 0, 0, CASE WHEN $2 = 'succeeded' THEN 1 END
         FROM generate_series(1, $1::int) g`,
        [count, state, T0, leaseFrom],
      );
    await insert(100_000, 'succeeded', null);
    await insert(1_000, 'scheduled', null);
    await insert(2_000, 'running', T0 + 600_000);
    await adminQuery(
      SERVER,
      `UPDATE "${schema}".tasks SET lease_expires_at = $1 WHERE id IN ('running1', 'running2')`,
      [T0],
    );
    await adminQuery(SERVER, `ANALYZE "${schema}".tasks`);
    const client = new pg.Client({ connectionString: storeUrl(SERVER, {}), options: `-c search_path=${schema}` });
    await client.connect();
    try {
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${SQL.claimDue.text}`, [
        T0 + 500_000,
        0,
        1_000,
        'node-a',
        5_000,
        ['mail'],
        [10],
      ]);
      const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(plan).toMatch(/Index Scan using tasks_claim_idx on tasks/);
      expect(plan).toMatch(/Index Scan using tasks_lease_idx on tasks/);
      expect(plan).toMatch(/Index Scan using tasks_queue_idx on tasks/);
      expect(plan).not.toMatch(/Seq Scan on tasks/);
    } finally {
      await client.end();
    }
  });

  it('looks completions up by id even when statistics say no task runs', async () => {
    const schema = randomSchema();
    await open({}, schema);
    const insert = (count: number, state: string, prefix: string) =>
      adminQuery(
        SERVER,
        `INSERT INTO "${schema}".tasks (id, namespace, name, state, scheduled_at, max_attempts, timeout_ms, backoff,
           lease_owner, lease_token, lease_expires_at, created_at, updated_at)
         SELECT $3 || g, 'default', 'bulk', $2, $4::bigint + g, 3, 30000, '{}',
           CASE WHEN $2 = 'running' THEN 'node' END, CASE WHEN $2 = 'running' THEN 't' || g END,
           CASE WHEN $2 = 'running' THEN $4::bigint + 60000 END, 0, 0
         FROM generate_series(1, $1::int) g`,
        [count, state, prefix, T0],
      );
    // A big backlog analyzed while nothing ran; then many tasks start running.
    await insert(100_000, 'scheduled', 'future');
    await adminQuery(SERVER, `ANALYZE "${schema}".tasks`);
    await insert(5_000, 'running', 'running');
    const ids = Array.from({ length: 500 }, (_, i) => `running${i + 1}`);
    const client = new pg.Client({ connectionString: storeUrl(SERVER, {}), options: `-c search_path=${schema}` });
    await client.connect();
    try {
      for (const [statement, values] of [
        [
          SQL.complete,
          [
            T0,
            ids,
            ids.map((_, i) => `t${i + 1}`),
            ids.map(() => 'succeeded'),
            ids.map(() => T0),
            ids.map(() => T0),
            ids.map(() => null),
            ids.map(() => null),
            'c',
          ],
        ],
        [SQL.release, [T0, ids, ids.map((_, i) => `t${i + 1}`), 'c']],
      ] as const) {
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${statement.text}`, [...values]);
        const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
        expect(plan).toMatch(/Index Scan using tasks_pkey on tasks/);
        expect(plan).not.toMatch(/Seq Scan on tasks|Index Scan using tasks_list_state_idx/);
      }
    } finally {
      await client.end();
    }
  });

  it('never lets an outbox reader pass an event that commits after a later one', async () => {
    const schema = randomSchema();
    const store = await open({}, schema);
    const [task] = await store.taskCreate({ tasks: [newTask()], now: T0 });
    const slow = new pg.Client({ connectionString: SERVER, options: `-c search_path=${schema}` });
    await slow.connect();
    try {
      // A writer draws the next seq and has not committed yet...
      await slow.query('BEGIN');
      await slow.query(
        `INSERT INTO task_events (task_id, namespace, name, type, attempt, at) VALUES ($1, 'default', 'x', 'updated', 0, 0)`,
        [must(task).task.id],
      );
      // ...while another commits a later one.
      await store.taskCreate({ tasks: [newTask()], now: T0 });
      const listing = store.eventList({ afterSeq: 1, limit: 10 });
      await waitUntil(
        async () =>
          (await adminQuery(SERVER, "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).length > 0,
        { what: 'the reader to wait for the open writer' },
      );
      await slow.query('COMMIT');
      expect((await listing).map((e) => [e.seq, e.type])).toEqual([
        [2, 'updated'],
        [3, 'created'],
      ]);
    } finally {
      await slow.end();
    }
  });

  it('refuses to open when its own notification never arrives', async () => {
    const notifier = new Notifier({
      client: { connectionString: SERVER },
      channel: 'punctual_tasks:nowhere',
      notify: async () => {}, // a pooler in transaction mode loses it just the same
    });
    await notifier.start();
    try {
      await expect(notifier.verify(200)).rejects.toThrow(/LISTEN\/NOTIFY is unavailable.*session mode/s);
    } finally {
      await notifier.close();
    }
  });

  it('fails calls fast while the server is down, and recovers without reopening when it is back', async () => {
    const server = await startPostgresServer();
    const stores: PostgresStore[] = [];
    try {
      const url = storeUrl(server.url, { schema: 'outage', pool: '3' });
      const a = await PostgresStore.open({ url });
      stores.push(a);
      const b = await PostgresStore.open({ url });
      stores.push(b);
      await a.taskCreate({ tasks: [newTask()], now: T0 });
      const reconnected = nextNotification(b, (t) => t === Number.NEGATIVE_INFINITY, 30_000);

      await server.down();
      for (const call of [() => a.taskCountByState(), () => a.taskCreate({ tasks: [newTask()] })]) {
        const started = performance.now();
        await expect(call()).rejects.toThrow();
        expect(performance.now() - started).toBeLessThan(3_000);
      }

      await server.up();
      // The pool dropped the connections the shutdown broke and opens fresh ones: no reopening.
      expect((await a.taskCountByState()).scheduled).toBe(1);
      // The listener is back on its own (it says so), and hears the other node again.
      await reconnected;
      const heard = nextNotification(b, (t) => t === T0 + 42);
      await a.taskCreate({ tasks: [newTask({ scheduledAt: T0 + 42 })], now: T0 });
      expect(await heard).toBe(T0 + 42);
    } finally {
      for (const store of stores) await store.close();
      await server.stop();
    }
  });
});
