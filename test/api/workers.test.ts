import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeys } from '../../src/api/api-keys.ts';
import { createPunctual } from '../../src/punctual.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { makeTask } from '../helpers/task-factory.ts';
import { expectProblem, FUTURE, type Harness, inMs, post, startHarness } from './harness.ts';

const UNKNOWN_ID = '01900000-0000-7000-8000-000000000000';

let h: Harness;

beforeAll(async () => {
  // A short lease grace, so a silent worker's lease ends within the test.
  h = await startHarness({ settings: { leaseGraceMs: 200 } });
});
afterAll(async () => {
  await h.close();
});

let queueCount = 0;
/** Every test its own queue: nothing left over from another test is claimed. */
function freshQueue(): string {
  queueCount += 1;
  return `q-${queueCount}-${Date.now()}`;
}

async function createFor(queue: string, fields: Record<string, unknown> = {}) {
  const res = await post(h.app, '/v1/tasks', {
    name: 'remote-job',
    scheduled_date: inMs(0),
    target: { type: 'worker', queue },
    ...fields,
  });
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ id: string; scheduled_date: string }>();
}

async function claim(queue: string, body: Record<string, unknown> = { wait_ms: 5_000 }) {
  const res = await post(h.app, `/v1/queues/${encodeURIComponent(queue)}/claim`, body);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{
    tasks: { id: string; lease_token: string; state: string; attempts: number; lease: { expires_at: string } }[];
  }>().tasks;
}

async function stateOf(id: string) {
  return (await h.app.inject({ method: 'GET', url: `/v1/tasks/${id}` })).json();
}

describe('POST /v1/queues/:queue/claim', () => {
  it('answers an empty queue at once with wait_ms 0', async () => {
    expect(await claim(freshQueue(), { wait_ms: 0 })).toEqual([]);
  });

  it('hands over a due task leased to the worker, with its token', async () => {
    const queue = freshQueue();
    const created = await createFor(queue, { payload: { to: 'ada' } });
    const [task, ...more] = await claim(queue);
    expect(more).toEqual([]);
    expect(task).toMatchObject({ id: created.id, state: 'running', attempts: 1, payload: { to: 'ada' } });
    expect(task?.lease_token).toEqual(expect.any(String));
    expect(Date.parse(task?.lease.expires_at as string)).toBeGreaterThan(Date.now());
  });

  it('wakes a waiting worker when a task falls due, not before', async () => {
    const queue = freshQueue();
    const created = await createFor(queue, { scheduled_date: inMs(400) });
    const tasks = await claim(queue, { wait_ms: 10_000 });
    const arrived = Date.now();
    expect(tasks.map((t) => t.id)).toEqual([created.id]);
    const due = Date.parse(created.scheduled_date);
    expect(arrived).toBeGreaterThanOrEqual(due);
    expect(arrived - due).toBeLessThan(250);
  });

  it('returns up to max tasks in one answer, and never the same task to two workers', async () => {
    const queue = freshQueue();
    for (let i = 0; i < 5; i++) await createFor(queue);
    const [a, b] = await Promise.all([
      claim(queue, { max: 3, wait_ms: 2_000 }),
      claim(queue, { max: 3, wait_ms: 2_000 }),
    ]);
    const ids = [...(a ?? []), ...(b ?? [])].map((t) => t.id);
    expect(ids).toHaveLength(5);
    expect(new Set(ids).size).toBe(5);
    expect(Math.max(a?.length ?? 0, b?.length ?? 0)).toBeLessThanOrEqual(3);
  });

  it('leaves tasks of other queues, and plain tasks, alone', async () => {
    const queue = freshQueue();
    await createFor(freshQueue());
    expect(await claim(queue, { wait_ms: 300 })).toEqual([]);
  });

  it('sends a task with no target and no handler to the queue named after it', async () => {
    const name = `unhandled-${Date.now()}`;
    const res = await post(h.app, '/v1/tasks', {
      name,
      description: 'from the original payload',
      scheduled_date: inMs(0),
    });
    expect(res.json().target).toEqual({ type: 'worker', queue: name });
    const [task] = await claim(name);
    expect(task).toMatchObject({ id: res.json().id, description: 'from the original payload' });
  });

  it.each([
    ['max below 1', { max: 0 }, '/max', 'minimum'],
    ['max above 1,000', { max: 1_001 }, '/max', 'maximum'],
    ['max as a string', { max: '5' }, '/max', 'type'],
    ['negative wait_ms', { wait_ms: -1 }, '/wait_ms', 'minimum'],
    ['wait_ms above 60 s', { wait_ms: 60_001 }, '/wait_ms', 'maximum'],
    ['an unknown field', { queue: 'x' }, '/queue', 'additionalProperties'],
  ])('refuses %s with a 400 naming the field', async (_label, body, field, rule) => {
    expectProblem(await post(h.app, '/v1/queues/q/claim', body), 400, 'PUNCTUAL_VALIDATION_FAILED', field, rule);
  });

  it('refuses a worker target without a queue, naming the field', async () => {
    const res = await post(h.app, '/v1/tasks', { name: 'x', scheduled_date: FUTURE, target: { type: 'worker' } });
    expectProblem(res, 400, 'PUNCTUAL_VALIDATION_FAILED', '/target/queue', 'required');
  });
});

describe('heartbeat, complete, fail', () => {
  it('complete: the task succeeds; a second report of the same lease is a 409', async () => {
    const queue = freshQueue();
    const { id } = await createFor(queue);
    const [task] = await claim(queue);
    const done = await post(h.app, `/v1/tasks/${id}/complete`, { lease_token: task?.lease_token });
    expect(done.statusCode, done.body).toBe(204);
    expect(await stateOf(id)).toMatchObject({ state: 'succeeded', attempts: 1 });
    expectProblem(
      await post(h.app, `/v1/tasks/${id}/complete`, { lease_token: task?.lease_token }),
      409,
      'PUNCTUAL_LEASE_LOST',
    );
  });

  it('heartbeat: extends the lease and says until when', async () => {
    const queue = freshQueue();
    const { id } = await createFor(queue, { timeout_ms: 2_000 });
    const [task] = await claim(queue);
    const before = Date.parse(task?.lease.expires_at as string);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const res = await post(h.app, `/v1/tasks/${id}/heartbeat`, { lease_token: task?.lease_token });
    expect(res.statusCode, res.body).toBe(200);
    const after = Date.parse(res.json().lease_expires_at);
    expect(after).toBeGreaterThan(before);
    expect(Date.parse((await stateOf(id)).lease.expires_at)).toBe(after);
  });

  it('fail, retryable: the task is scheduled again by its backoff; not retryable: it fails now', async () => {
    const queue = freshQueue();
    const retried = await createFor(queue, { backoff: { base_ms: 60_000, jitter: false } });
    const failed = await createFor(queue);
    const tasks = await claim(queue, { max: 2, wait_ms: 2_000 });
    const token = (id: string) => tasks.find((t) => t.id === id)?.lease_token;
    expect(tasks).toHaveLength(2);
    const r1 = await post(h.app, `/v1/tasks/${retried.id}/fail`, { lease_token: token(retried.id), error: 'smtp 451' });
    expect(r1.statusCode, r1.body).toBe(204);
    const r2 = await post(h.app, `/v1/tasks/${failed.id}/fail`, {
      lease_token: token(failed.id),
      error: 'bad address',
      retryable: false,
    });
    expect(r2.statusCode, r2.body).toBe(204);
    const again = await stateOf(retried.id);
    expect(again).toMatchObject({ state: 'scheduled', last_error: 'smtp 451', attempts: 1 });
    expect(Date.parse(again.scheduled_date)).toBeGreaterThan(Date.now() + 50_000);
    expect(await stateOf(failed.id)).toMatchObject({ state: 'failed', last_error: 'bad address' });
  });

  it('a worker that goes silent loses its lease: the task is claimed again and the old token is a 409', async () => {
    const queue = freshQueue();
    const { id } = await createFor(queue, { timeout_ms: 300 });
    const [first] = await claim(queue);
    const [second] = await claim(queue, { wait_ms: 10_000 });
    expect(second).toMatchObject({ id, attempts: 2 });
    expect(second?.lease_token).not.toBe(first?.lease_token);
    expectProblem(
      await post(h.app, `/v1/tasks/${id}/complete`, { lease_token: first?.lease_token }),
      409,
      'PUNCTUAL_LEASE_LOST',
    );
    expectProblem(
      await post(h.app, `/v1/tasks/${id}/heartbeat`, { lease_token: first?.lease_token }),
      409,
      'PUNCTUAL_LEASE_LOST',
    );
    expect((await post(h.app, `/v1/tasks/${id}/complete`, { lease_token: second?.lease_token })).statusCode).toBe(204);
  });

  it('an unknown task is a 404; a wrong token a 409', async () => {
    expectProblem(
      await post(h.app, `/v1/tasks/${UNKNOWN_ID}/complete`, { lease_token: 'x' }),
      404,
      'PUNCTUAL_TASK_NOT_FOUND',
    );
    const queue = freshQueue();
    const { id } = await createFor(queue);
    await claim(queue);
    expectProblem(await post(h.app, `/v1/tasks/${id}/complete`, { lease_token: 'not-it' }), 409, 'PUNCTUAL_LEASE_LOST');
  });

  it.each([
    ['complete without a body', 'complete', undefined, '', 'required'],
    ['complete without lease_token', 'complete', {}, '/lease_token', 'required'],
    ['heartbeat with a numeric lease_token', 'heartbeat', { lease_token: 5 }, '/lease_token', 'type'],
    ['fail without error', 'fail', { lease_token: 't' }, '/error', 'required'],
    [
      'fail with retryable as a string',
      'fail',
      { lease_token: 't', error: 'e', retryable: 'no' },
      '/retryable',
      'type',
    ],
    [
      'fail with negative retry_after_ms',
      'fail',
      { lease_token: 't', error: 'e', retry_after_ms: -1 },
      '/retry_after_ms',
      'minimum',
    ],
  ])('refuses %s with a 400 naming the field', async (_label, action, body, field, rule) => {
    expectProblem(
      await post(h.app, `/v1/tasks/${UNKNOWN_ID}/${action}`, body),
      400,
      'PUNCTUAL_VALIDATION_FAILED',
      field,
      rule,
    );
  });
});

describe('with API keys', () => {
  it('a worker without a key, or with a wrong one, is refused with 401', async () => {
    const keyed = await startHarness({
      apiKeys: ApiKeys.fromEnv({ PUNCTUAL_API_KEYS: 'secret-key-0123456789abcdef' }),
    });
    try {
      const claimPath = '/v1/queues/q/claim';
      expectProblem(await post(keyed.app, claimPath, { wait_ms: 0 }), 401, 'PUNCTUAL_UNAUTHORIZED');
      expectProblem(
        await post(keyed.app, claimPath, { wait_ms: 0 }, { authorization: 'Bearer wrong' }),
        401,
        'PUNCTUAL_UNAUTHORIZED',
      );
      const ok = await post(
        keyed.app,
        claimPath,
        { wait_ms: 0 },
        { authorization: 'Bearer secret-key-0123456789abcdef' },
      );
      expect(ok.statusCode).toBe(200);
    } finally {
      await keyed.close();
    }
  });
});

describe('on a store without worker queues (DynamoDB)', () => {
  it('refuses a worker target naming the field, and leaves tasks without a handler to fail as before', async () => {
    const real = SqliteStore.open({ path: ':memory:' });
    await real.migrate();
    // The real store, declaring what DynamoDB declares.
    const store = Object.assign(Object.create(real), {
      capabilities: { ...real.capabilities, workerQueues: false },
    }) as typeof real;
    const p = createPunctual({ store });
    const error = await p
      .createTasks([makeTask({ target: { type: 'worker', queue: 'mail' } })])
      .catch((e: unknown) => e as { code: string; errors: { field: string }[] });
    expect(error).toMatchObject({ code: 'PUNCTUAL_VALIDATION_FAILED', errors: [{ field: '/target' }] });
    const [created] = await p.createTasks([makeTask({ name: 'nobody-handles-this', target: null })]);
    expect(created?.task.target).toBeNull();
    await real.close();
  });
});
