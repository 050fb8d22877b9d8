import Value from 'typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchResult } from '../../src/core/schemas.ts';
import { expectProblem, FUTURE, type Harness, post, startHarness } from './harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const item = (i: number, extra: Record<string, unknown> = {}) => ({
  name: `job-${i}`,
  scheduled_date: FUTURE,
  namespace: 'batch',
  ...extra,
});

async function countIn(namespace: string): Promise<number> {
  const res = await h.app.inject({ url: `/v1/tasks?namespace=${namespace}&limit=1000` });
  return res.json().tasks.length;
}

describe('POST /v1/tasks/batch', () => {
  it('creates every task in one call and answers in input order', async () => {
    const tasks = Array.from({ length: 50 }, (_, i) => item(i, { namespace: 'batch-order', payload: { i } }));
    const res = await post(h.app, '/v1/tasks/batch', { tasks });
    expect(res.statusCode).toBe(200);
    const body = res.json<BatchResult>();
    expect(Value.Check(BatchResult, body), res.body).toBe(true);
    expect(body.results).toHaveLength(50);
    body.results.forEach((r, i) => {
      expect(r.status).toBe('created');
      expect(r.task).toMatchObject({ name: `job-${i}`, payload: { i }, state: 'scheduled', attempts: 0 });
    });
    expect(new Set(body.results.map((r) => r.task.id)).size).toBe(50);
    expect(await countIn('batch-order')).toBe(50);
  });

  it('reports created, existing and conflict per item', async () => {
    const first = await post(h.app, '/v1/tasks', item(0, { idempotency_key: 'same' }));
    await post(h.app, '/v1/tasks', item(0, { idempotency_key: 'changed' }));
    const res = await post(h.app, '/v1/tasks/batch', {
      tasks: [item(1), item(0, { idempotency_key: 'same' }), item(99, { idempotency_key: 'changed' })],
    });
    expect(res.statusCode).toBe(200);
    const statuses = res.json<BatchResult>().results.map((r) => r.status);
    expect(statuses).toEqual(['created', 'existing', 'conflict']);
    expect(res.json<BatchResult>().results[1]?.task.id).toBe(first.json().id);
  });

  it('accepts 1,000 tasks', async () => {
    const tasks = Array.from({ length: 1000 }, (_, i) => item(i, { namespace: 'batch-max' }));
    const res = await post(h.app, '/v1/tasks/batch', { tasks });
    expect(res.statusCode).toBe(200);
    expect(res.json().results).toHaveLength(1000);
  });

  it('1,001 tasks → 400 naming /tasks', async () => {
    const tasks = Array.from({ length: 1001 }, (_, i) => item(i, { namespace: 'batch-over' }));
    const res = await post(h.app, '/v1/tasks/batch', { tasks });
    expectProblem(res, 400, 'PUNCTUAL_VALIDATION_FAILED', '/tasks', 'maxItems');
    expect(await countIn('batch-over')).toBe(0);
  });

  it('no tasks → 400', async () => {
    expectProblem(
      await post(h.app, '/v1/tasks/batch', { tasks: [] }),
      400,
      'PUNCTUAL_VALIDATION_FAILED',
      '/tasks',
      'minItems',
    );
    expectProblem(await post(h.app, '/v1/tasks/batch', {}), 400, 'PUNCTUAL_VALIDATION_FAILED', '/tasks', 'required');
    expectProblem(await post(h.app, '/v1/tasks/batch', ''), 400, 'PUNCTUAL_VALIDATION_FAILED', '', 'required');
  });

  it('one bad item → 400 naming its index, and nothing is stored', async () => {
    const tasks = Array.from({ length: 5 }, (_, i) => item(i, { namespace: 'batch-bad' }));
    tasks[3] = { ...tasks[3], scheduled_date: 'next tuesday' } as (typeof tasks)[number];
    const res = await post(h.app, '/v1/tasks/batch', { tasks });
    expectProblem(res, 400, 'PUNCTUAL_VALIDATION_FAILED', '/tasks/3/scheduled_date', 'format');
    expect(await countIn('batch-bad')).toBe(0);
  });

  it('an item that fails a cross-field rule is named by its index too', async () => {
    const tasks = [item(0), item(1), item(2, { deadline: '2000-01-01T00:00:00Z' })];
    const res = await post(h.app, '/v1/tasks/batch', { tasks });
    expectProblem(res, 400, 'PUNCTUAL_VALIDATION_FAILED', '/tasks/2/deadline', 'minimum');
  });

  it('an item with a payload over 256 KiB → 413 naming its index', async () => {
    const tasks = [item(0), item(1, { payload: 'x'.repeat(300 * 1024) })];
    const res = await post(h.app, '/v1/tasks/batch', { tasks });
    expectProblem(res, 413, 'PUNCTUAL_PAYLOAD_TOO_LARGE', '/tasks/1/payload', 'maxBytes');
  });

  it('an unknown field in an item or at the top → 400', async () => {
    const nested = await post(h.app, '/v1/tasks/batch', { tasks: [item(0), { ...item(1), colour: 'red' }] });
    expectProblem(nested, 400, 'PUNCTUAL_VALIDATION_FAILED', '/tasks/1/colour', 'additionalProperties');
    const top = await post(h.app, '/v1/tasks/batch', { tasks: [item(0)], atomic: true });
    expectProblem(top, 400, 'PUNCTUAL_VALIDATION_FAILED', '/atomic', 'additionalProperties');
  });

  it('takes bodies over the single-task limit (up to its own)', async () => {
    const tasks = Array.from({ length: 8 }, (_, i) =>
      item(i, { namespace: 'batch-big', payload: 'x'.repeat(200 * 1024) }),
    );
    const res = await post(h.app, '/v1/tasks/batch', { tasks });
    expect(res.statusCode).toBe(200);
  });
});
