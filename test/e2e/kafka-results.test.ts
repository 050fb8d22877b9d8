/**
 * The results topic, on a real broker with two `punctual serve` replicas sharing one PostgreSQL
 * store: tasks with a Kafka target and `await_result` go to a topic a worker (this test) consumes;
 * the worker reports on punctual.tasks.results; the replicas consume that topic in one group and
 * apply each outcome once, fenced by the lease token — even when the worker sends every report
 * twice. Failures retry by the task's rules; heartbeats keep a long task's lease; a worker that
 * never reports loses it.
 */
import { Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_TOPICS } from '../../src/kafka/settings.ts';
import { ensureTopics } from '../../src/kafka/topics.ts';
import { type KafkaBroker, startKafkaBroker } from '../helpers/kafka-broker.ts';
import { adminQuery, dropSchema, randomSchema, storeUrl } from '../helpers/postgres-server.ts';
import { api, type ServiceProcess, startService } from '../helpers/service-process.ts';
import { waitUntil } from '../helpers/wait.ts';

const WORK_TOPIC = 'test.work';

interface Job {
  taskId: string;
  leaseToken: string;
  attempt: number;
  payload: { mode: string };
}

let broker: KafkaBroker;
let base: string;
let schema: string;
let replicas: ServiceProcess[] = [];
let worker: { stop(): Promise<void> };
let reports: Producer<string, string, string, string>;
/** Every job the worker received, in order. */
const jobs: Job[] = [];

/** Sends a report to the results topic. */
async function report(body: unknown): Promise<void> {
  await reports.send({
    messages: [
      { topic: DEFAULT_TOPICS.results, key: 'k', value: typeof body === 'string' ? body : JSON.stringify(body) },
    ],
  });
}

/** The test's worker: receives jobs and answers according to each task's payload. */
async function startWorker(): Promise<{ stop(): Promise<void> }> {
  const consumer = new Consumer({
    clientId: 'test-worker',
    groupId: `test-worker-${Date.now()}`,
    bootstrapBrokers: [broker.brokers],
    deserializers: stringDeserializers,
  });
  const stream = await consumer.consume({ topics: [WORK_TOPIC], mode: 'earliest', autocommit: true });
  stream.on('data', (message) => {
    const headers = new Map([...(message.headers ?? new Map())].map(([k, v]) => [String(k), String(v)]));
    const job: Job = {
      taskId: headers.get('punctual-task-id') as string,
      leaseToken: headers.get('punctual-lease-token') as string,
      attempt: Number(headers.get('punctual-attempt')),
      payload: JSON.parse(String(message.value)),
    };
    jobs.push(job);
    const reply = { task_id: job.taskId, lease_token: job.leaseToken };
    switch (job.payload.mode) {
      case 'twice': // every report sent twice: the second must change nothing
        void report({ ...reply, status: 'succeeded' }).then(() => report({ ...reply, status: 'succeeded' }));
        break;
      case 'fail-once':
        void report(
          job.attempt === 1
            ? { ...reply, status: 'failed', error: 'worker says try again' }
            : { ...reply, status: 'succeeded' },
        );
        break;
      case 'fail-for-good':
        void report({ ...reply, status: 'failed', error: 'worker says no', retryable: false });
        break;
      case 'long': // works 8 s, twice its lease, reporting a heartbeat every second
        void (async () => {
          for (let i = 0; i < 8; i++) {
            await new Promise((resolve) => setTimeout(resolve, 1_000));
            await report({ ...reply, status: 'heartbeat' });
          }
          await report({ ...reply, status: 'succeeded' });
        })();
        break;
      case 'silent-once': // the first attempt is never answered: its lease must end
        if (job.attempt > 1) void report({ ...reply, status: 'succeeded' });
        break;
    }
  });
  return {
    async stop() {
      await stream.close();
      await consumer.close(true);
    },
  };
}

beforeAll(async () => {
  broker = await startKafkaBroker();
  await ensureTopics([broker.brokers], [WORK_TOPIC], 'test-setup');
  base = inject('postgresUrl');
  schema = randomSchema();
  const store = storeUrl(base, { schema });
  const args = ['--kafka-brokers', broker.brokers];
  // Short leases, so an unanswered attempt comes back within the test.
  const env = { PUNCTUAL_LEASE_GRACE_MS: '1000' };
  replicas = [await startService({ store, args, env }), await startService({ store, args, env })];
  reports = new Producer({
    clientId: 'test-reports',
    bootstrapBrokers: [broker.brokers],
    serializers: stringSerializers,
  });
  worker = await startWorker();
}, 240_000);

afterAll(async () => {
  await worker?.stop();
  await reports?.close();
  for (const replica of replicas) await replica.kill('SIGTERM');
  await broker?.stop();
  if (schema) await dropSchema(base, schema);
});

async function createJobs(count: number, mode: string, extra: Record<string, unknown> = {}): Promise<string[]> {
  const tasks = Array.from({ length: count }, (_, i) => ({
    name: 'remote-job',
    scheduled_date: new Date(Date.now() + 1_000 + i).toISOString(),
    payload: { mode },
    target: { type: 'kafka', topic: WORK_TOPIC, await_result: true },
    timeout_ms: 3_000,
    backoff: { type: 'exponential', base_ms: 100, factor: 2, max_ms: 100 },
    ...extra,
  }));
  const ids: string[] = [];
  for (let i = 0; i < tasks.length; i += 1_000) {
    const created = await api(replicas[i % 2]?.url as string, '/v1/tasks/batch', {
      body: { tasks: tasks.slice(i, i + 1_000) },
    });
    expect(created.status).toBe(200);
    ids.push(...created.body.results.map((r: { task: { id: string } }) => r.task.id));
  }
  return ids;
}

async function rows<R extends Record<string, unknown>>(sql: string, ids: string[]): Promise<R[]> {
  return adminQuery<R>(base, sql.replaceAll('$schema', `"${schema}"`), [ids]);
}

async function states(ids: string[]): Promise<Record<string, number>> {
  const found = await rows<{ state: string; n: number }>(
    'SELECT state, count(*)::int AS n FROM $schema.tasks WHERE id = ANY($1) GROUP BY state',
    ids,
  );
  return Object.fromEntries(found.map((r) => [r.state, r.n]));
}

describe('the results topic', () => {
  it('applies each outcome exactly once across two replicas, though every report comes twice', {
    timeout: 180_000,
  }, async () => {
    const ids = await createJobs(2_000, 'twice', { timeout_ms: 60_000 });
    await waitUntil(async () => (await states(ids)).succeeded === 2_000, { timeoutMs: 120_000, intervalMs: 500 });
    const succeededEvents = await rows<{ n: number }>(
      "SELECT count(*)::int AS n FROM $schema.task_events WHERE task_id = ANY($1) AND type = 'succeeded'",
      ids,
    );
    expect(succeededEvents[0]?.n).toBe(2_000);
    const attempts = await rows<{ attempts: number; n: number }>(
      'SELECT attempts, count(*)::int AS n FROM $schema.tasks WHERE id = ANY($1) GROUP BY attempts',
      ids,
    );
    expect(attempts).toEqual([{ attempts: 1, n: 2_000 }]);
    // The work was published once per task, each with its lease token.
    const received = jobs.filter((j) => ids.includes(j.taskId));
    expect(received).toHaveLength(2_000);
    expect(received.every((j) => j.leaseToken.length > 0 && j.attempt === 1)).toBe(true);
  });

  it('retries a retryable failure and fails a permanent one, by the task rules', { timeout: 120_000 }, async () => {
    const [flaky] = await createJobs(1, 'fail-once');
    const [doomed] = await createJobs(1, 'fail-for-good', { max_attempts: 5 });
    await waitUntil(
      async () => {
        const flakyTask = await api(replicas[0]?.url as string, `/v1/tasks/${flaky}`);
        const doomedTask = await api(replicas[1]?.url as string, `/v1/tasks/${doomed}`);
        return (
          flakyTask.body.state === 'succeeded' &&
          doomedTask.body.state === 'failed' && [flakyTask.body, doomedTask.body]
        );
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    ).then(([flakyTask, doomedTask]) => {
      expect(flakyTask.attempts).toBe(2);
      expect(doomedTask.attempts).toBe(1);
      expect(doomedTask.last_error).toContain('worker says no');
    });
    const flakyJobs = jobs.filter((j) => j.taskId === flaky);
    expect(flakyJobs.map((j) => j.attempt)).toEqual([1, 2]);
    expect(flakyJobs[0]?.leaseToken).not.toBe(flakyJobs[1]?.leaseToken);
  });

  it('keeps a long task leased to its worker while heartbeats come', { timeout: 120_000 }, async () => {
    // timeout 3 s + grace 1 s: without heartbeats the lease would end ~4 s in, and the task go out again.
    const [id] = (await createJobs(1, 'long')) as [string];
    await waitUntil(async () => (await api(replicas[0]?.url as string, `/v1/tasks/${id}`)).body.state === 'succeeded', {
      timeoutMs: 60_000,
      intervalMs: 250,
    });
    expect((await api(replicas[1]?.url as string, `/v1/tasks/${id}`)).body).toMatchObject({ attempts: 1 });
    expect(jobs.filter((j) => j.taskId === id)).toHaveLength(1);
  });

  it('runs a task again when its worker never reports, and ignores the late report of the lost lease', {
    timeout: 120_000,
  }, async () => {
    const [id] = (await createJobs(1, 'silent-once')) as [string];
    // timeout 3 s + grace 1 s: the first lease ends ~4 s after the task's time.
    await waitUntil(async () => (await api(replicas[0]?.url as string, `/v1/tasks/${id}`)).body.state === 'succeeded', {
      timeoutMs: 60_000,
      intervalMs: 250,
    });
    const [first, second] = jobs.filter((j) => j.taskId === id);
    expect(first?.attempt).toBe(1);
    expect(second?.attempt).toBe(2);
    const before = await rows<{ n: number }>(
      'SELECT count(*)::int AS n FROM $schema.task_events WHERE task_id = ANY($1)',
      [id],
    );
    await report({ task_id: id, lease_token: first?.leaseToken, status: 'failed', error: 'late' });
    await report('not json at all');
    await report({ task_id: id, status: 'succeeded' });
    // A later valid report still gets through: the malformed ones were skipped, not stuck.
    const [probe] = (await createJobs(1, 'twice')) as [string];
    await waitUntil(
      async () => (await api(replicas[1]?.url as string, `/v1/tasks/${probe}`)).body.state === 'succeeded',
      {
        timeoutMs: 60_000,
        intervalMs: 250,
      },
    );
    const after = await rows<{ n: number }>(
      'SELECT count(*)::int AS n FROM $schema.task_events WHERE task_id = ANY($1)',
      [id],
    );
    expect(after).toEqual(before);
    expect((await api(replicas[0]?.url as string, `/v1/tasks/${id}`)).body).toMatchObject({
      state: 'succeeded',
      attempts: 2,
    });
  });
});
