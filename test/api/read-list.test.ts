import Value from 'typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BatchResult, TaskList, TaskWithAttemptsResource } from '../../src/core/schemas.ts';
import { createTask, expectProblem, type Harness, post, startHarness } from './harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

describe('GET /v1/tasks/:id', () => {
  it('returns the task with its (empty) attempt log', async () => {
    const created = await createTask(h.app, { name: 'read-me', payload: { x: 1 } });
    const res = await h.app.inject({ url: `/v1/tasks/${created.id}` });
    expect(res.statusCode).toBe(200);
    const task = res.json();
    expect(Value.Check(TaskWithAttemptsResource, task), res.body).toBe(true);
    expect(task).toEqual({ ...created, attempt_log: [] });
  });

  it('accepts the id in upper case', async () => {
    const created = await createTask(h.app);
    const res = await h.app.inject({ url: `/v1/tasks/${created.id.toUpperCase()}` });
    expect(res.statusCode).toBe(200);
    expect(res.json().id).toBe(created.id);
  });

  it('an unknown id → 404', async () => {
    const res = await h.app.inject({ url: '/v1/tasks/01900000-0000-7000-8000-000000000000' });
    expectProblem(res, 404, 'PUNCTUAL_TASK_NOT_FOUND');
  });

  it('a malformed id → 404', async () => {
    expectProblem(await h.app.inject({ url: '/v1/tasks/not-a-uuid' }), 404, 'PUNCTUAL_TASK_NOT_FOUND');
    expectProblem(await h.app.inject({ url: `/v1/tasks/${'9'.repeat(500)}` }), 404, 'PUNCTUAL_TASK_NOT_FOUND');
  });
});

describe('GET /v1/tasks', () => {
  const namespace = 'paging';
  const expected: string[] = [];

  beforeAll(async () => {
    // 23 tasks over 5 distinct times, so pages end in the middle of equal times (ties by id).
    const tasks = Array.from({ length: 23 }, (_, i) => ({
      name: i % 2 === 0 ? 'even' : 'odd',
      namespace,
      scheduled_date: `2099-01-0${1 + (i % 5)}T00:00:00Z`,
    }));
    const res = await post(h.app, '/v1/tasks/batch', { tasks });
    const created = res.json<BatchResult>().results.map((r) => r.task);
    created.sort((a, b) => a.scheduled_date.localeCompare(b.scheduled_date) || a.id.localeCompare(b.id));
    expected.push(...created.map((t) => t.id));
  });

  it('walks every page, each task exactly once, in scheduled order', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `namespace=${namespace}&limit=5${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await h.app.inject({ url: `/v1/tasks?${query}` });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json<TaskList>();
      expect(Value.Check(TaskList, body), res.body).toBe(true);
      seen.push(...body.tasks.map((t) => t.id));
      cursor = body.next_cursor;
      pages += 1;
    } while (cursor !== null && pages < 20);
    expect(pages).toBe(5);
    expect(seen).toEqual(expected);
  });

  it('a page that ends exactly at the last task has next_cursor null', async () => {
    const res = await h.app.inject({ url: `/v1/tasks?namespace=${namespace}&limit=23` });
    expect(res.json().tasks).toHaveLength(23);
    expect(res.json().next_cursor).toBeNull();
  });

  it('defaults to 100 per page', async () => {
    await post(h.app, '/v1/tasks/batch', {
      tasks: Array.from({ length: 101 }, () => ({
        name: 'many',
        namespace: 'many',
        scheduled_date: '2099-01-01T00:00:00Z',
      })),
    });
    const res = await h.app.inject({ url: '/v1/tasks?namespace=many' });
    expect(res.json().tasks).toHaveLength(100);
    expect(res.json().next_cursor).toEqual(expect.any(String));
  });

  it('filters by name, state and time (bounds inclusive)', async () => {
    const byName = await h.app.inject({ url: `/v1/tasks?namespace=${namespace}&name=even&limit=1000` });
    expect(byName.json().tasks).toHaveLength(12);
    expect(byName.json<TaskList>().tasks.every((t) => t.name === 'even')).toBe(true);

    const scheduled = await h.app.inject({ url: `/v1/tasks?namespace=${namespace}&state=scheduled&limit=1000` });
    expect(scheduled.json().tasks).toHaveLength(23);
    const canceled = await h.app.inject({ url: `/v1/tasks?namespace=${namespace}&state=canceled` });
    expect(canceled.json().tasks).toHaveLength(0);

    const window = await h.app.inject({
      url: `/v1/tasks?namespace=${namespace}&scheduled_after=2099-01-02T00:00:00Z&scheduled_before=2099-01-03T00:00:00%2B00:00&limit=1000`,
    });
    const dates = new Set(window.json<TaskList>().tasks.map((t) => t.scheduled_date));
    expect(dates).toEqual(new Set(['2099-01-02T00:00:00.000Z', '2099-01-03T00:00:00.000Z']));
    expect(window.json().tasks).toHaveLength(10);
  });

  const bad: [string, string, string][] = [
    ['limit=0', '/limit', 'minimum'],
    ['limit=1001', '/limit', 'maximum'],
    ['limit=ten', '/limit', 'pattern'],
    ['limit=-1', '/limit', 'pattern'],
    ['state=done', '/state', 'enum'],
    ['namespace=Not%20Valid', '/namespace', 'pattern'],
    ['scheduled_after=yesterday', '/scheduled_after', 'format'],
    ['scheduled_before=2099-01-01T00:00:00', '/scheduled_before', 'format'],
    ['sort=desc', '/sort', 'additionalProperties'],
  ];
  it.each(bad)('%s → 400 naming %s', async (query, field, rule) => {
    const res = await h.app.inject({ url: `/v1/tasks?${query}` });
    expectProblem(res, 400, 'PUNCTUAL_VALIDATION_FAILED', field, rule);
  });

  it.each([
    ['garbage', 'not a cursor!'],
    ['base64 of something else', Buffer.from('{"a":1}').toString('base64url')],
    ['a cursor with a bad id', Buffer.from('[1,"x"]').toString('base64url')],
  ])('a bad cursor (%s) → 400 PUNCTUAL_INVALID_CURSOR', async (_label, cursor) => {
    const res = await h.app.inject({ url: `/v1/tasks?cursor=${encodeURIComponent(cursor)}` });
    expectProblem(res, 400, 'PUNCTUAL_INVALID_CURSOR', '/cursor');
  });
});
