import Value from 'typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskResource } from '../../src/core/schemas.ts';
import {
  createTask,
  expectProblem,
  FUTURE,
  type Harness,
  inMs,
  patch,
  post,
  startHarness,
  waitForState,
} from './harness.ts';

const UNKNOWN_ID = '01900000-0000-7000-8000-000000000000';

let h: Harness;
/** A task whose only attempt failed: its webhook points at a private address, which is refused. */
let failedId: string;

beforeAll(async () => {
  h = await startHarness();
  const res = await post(h.app, '/v1/tasks', {
    name: 'refused-webhook',
    scheduled_date: inMs(0),
    max_attempts: 1,
    target: { type: 'http', url: 'http://10.0.0.1/hook' },
  });
  failedId = res.json().id;
  await waitForState(h, failedId, 'failed');
});
afterAll(async () => {
  await h.close();
});

describe('POST /v1/tasks/:id/cancel', () => {
  it('cancels a scheduled task', async () => {
    const task = await createTask(h.app);
    const res = await post(h.app, `/v1/tasks/${task.id}/cancel`);
    expect(res.statusCode).toBe(200);
    expect(Value.Check(TaskResource, res.json())).toBe(true);
    expect(res.json()).toMatchObject({ id: task.id, state: 'canceled' });
    expect(res.json().finished_at).toEqual(expect.any(String));
  });

  it('a second cancel → 409 naming the state and what is allowed', async () => {
    const task = await createTask(h.app);
    await post(h.app, `/v1/tasks/${task.id}/cancel`);
    const problem = expectProblem(await post(h.app, `/v1/tasks/${task.id}/cancel`), 409, 'PUNCTUAL_INVALID_STATE');
    expect(problem.detail).toBe('task is canceled; only a scheduled task can be canceled');
  });

  it('unknown or malformed id → 404', async () => {
    expectProblem(await post(h.app, `/v1/tasks/${UNKNOWN_ID}/cancel`), 404, 'PUNCTUAL_TASK_NOT_FOUND');
    expectProblem(await post(h.app, '/v1/tasks/42/cancel'), 404, 'PUNCTUAL_TASK_NOT_FOUND');
  });

  it.each([
    ['no body, no content type', undefined, {}],
    ['an empty JSON body', '', { 'content-type': 'application/json' }],
    ['{}', '{}', { 'content-type': 'application/json' }],
    ['{} without a content type', '{}', {}],
    ['an empty form body (curl -d "")', '', { 'content-type': 'application/x-www-form-urlencoded' }],
  ])('takes no body: accepts %s', async (_label, payload, headers) => {
    const task = await createTask(h.app);
    const res = await h.app.inject({ method: 'POST', url: `/v1/tasks/${task.id}/cancel`, payload, headers });
    expect(res.statusCode, res.body).toBe(200);
  });

  it('refuses a body with content', async () => {
    const task = await createTask(h.app);
    const url = `/v1/tasks/${task.id}/cancel`;
    expectProblem(
      await post(h.app, url, { reason: 'x' }),
      400,
      'PUNCTUAL_VALIDATION_FAILED',
      '/reason',
      'additionalProperties',
    );
    expectProblem(
      await post(h.app, url, '[]', { 'content-type': 'application/json' }),
      400,
      'PUNCTUAL_VALIDATION_FAILED',
      '',
      'type',
    );
    expectProblem(
      await post(h.app, url, 'please', { 'content-type': 'text/plain' }),
      415,
      'PUNCTUAL_UNSUPPORTED_MEDIA_TYPE',
    );
    expectProblem(await post(h.app, url, '{', { 'content-type': 'application/json' }), 400, 'PUNCTUAL_MALFORMED_JSON');
    expect((await h.app.inject({ url: `/v1/tasks/${task.id}` })).json().state).toBe('scheduled');
  });
});

describe('PATCH /v1/tasks/:id', () => {
  it('edits the given fields and leaves the rest', async () => {
    const task = await createTask(h.app, {
      payload: { v: 1 },
      backoff: { base_ms: 10 },
      deadline: '2099-02-01T00:00:00Z',
    });
    const res = await patch(h.app, `/v1/tasks/${task.id}`, {
      name: 'renamed',
      description: 'now with a description',
      payload: { v: 2 },
      scheduled_date: '2099-01-15T00:00:00Z',
      max_attempts: 7,
      timeout_ms: 500,
      backoff: { factor: 3 },
      target: { type: 'http', url: 'https://example.com/x' },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({
      id: task.id,
      name: 'renamed',
      description: 'now with a description',
      payload: { v: 2 },
      scheduled_date: '2099-01-15T00:00:00.000Z',
      deadline: '2099-02-01T00:00:00.000Z',
      max_attempts: 7,
      timeout_ms: 500,
      backoff: { base_ms: 10, factor: 3 },
      target: { type: 'http', url: 'https://example.com/x' },
      state: 'scheduled',
    });
    const cleared = await patch(h.app, `/v1/tasks/${task.id}`, { deadline: null, target: null, description: null });
    expect(cleared.json()).toMatchObject({ deadline: null, target: null, description: null, name: 'renamed' });
  });

  it.each([
    ['an empty patch', {}, '', 'minProperties'],
    ['an unknown field', { state: 'succeeded' }, '/state', 'additionalProperties'],
    ['a field that cannot change', { namespace: 'other' }, '/namespace', 'additionalProperties'],
    ['a blank name', { name: '  ' }, '/name', 'pattern'],
    ['a date without offset', { scheduled_date: '2099-01-01 10:00' }, '/scheduled_date', 'format'],
    ['a wrong type', { max_attempts: '5' }, '/max_attempts', 'type'],
    ['a bad target', { target: { type: 'http', url: 'mailto:x@example.com' } }, '/target/url', 'pattern'],
    ['a deadline before the current time', { deadline: '2098-01-01T00:00:00Z' }, '/deadline', 'minimum'],
  ])('%s → 400', async (_label, body, field, rule) => {
    const task = await createTask(h.app);
    expectProblem(await patch(h.app, `/v1/tasks/${task.id}`, body), 400, 'PUNCTUAL_VALIDATION_FAILED', field, rule);
  });

  it('a new time after the current deadline → 400 naming /scheduled_date', async () => {
    const task = await createTask(h.app, { deadline: '2099-01-02T00:00:00Z' });
    const res = await patch(h.app, `/v1/tasks/${task.id}`, { scheduled_date: '2099-01-03T00:00:00Z' });
    expectProblem(res, 400, 'PUNCTUAL_VALIDATION_FAILED', '/scheduled_date', 'maximum');
  });

  it('a payload over 256 KiB → 413', async () => {
    const task = await createTask(h.app);
    const res = await patch(h.app, `/v1/tasks/${task.id}`, { payload: 'x'.repeat(257 * 1024) });
    expectProblem(res, 413, 'PUNCTUAL_PAYLOAD_TOO_LARGE', '/payload');
  });

  it('unknown id → 404; a task that is not scheduled → 409', async () => {
    expectProblem(await patch(h.app, `/v1/tasks/${UNKNOWN_ID}`, { name: 'x' }), 404, 'PUNCTUAL_TASK_NOT_FOUND');
    const problem = expectProblem(
      await patch(h.app, `/v1/tasks/${failedId}`, { name: 'x' }),
      409,
      'PUNCTUAL_INVALID_STATE',
    );
    expect(problem.detail).toBe('task is failed; only a scheduled task can be edited');
  });
});

describe('POST /v1/tasks/:id/run', () => {
  it('moves a scheduled task to now', async () => {
    const task = await createTask(h.app, { name: 'run-me' });
    const before = Date.now();
    const res = await post(h.app, `/v1/tasks/${task.id}/run`);
    expect(res.statusCode, res.body).toBe(200);
    expect(Date.parse(res.json().scheduled_date)).toBeLessThan(Date.parse(FUTURE));
    expect(Date.parse(res.json().scheduled_date)).toBeGreaterThanOrEqual(before - 1);
  });

  it('unknown id → 404; a failed task → 409', async () => {
    expectProblem(await post(h.app, `/v1/tasks/${UNKNOWN_ID}/run`), 404, 'PUNCTUAL_TASK_NOT_FOUND');
    const problem = expectProblem(await post(h.app, `/v1/tasks/${failedId}/run`), 409, 'PUNCTUAL_INVALID_STATE');
    expect(problem.detail).toBe('task is failed; only a scheduled task can be run now');
  });
});

describe('POST /v1/tasks/:id/retry', () => {
  it('a scheduled task → 409; unknown id → 404', async () => {
    const task = await createTask(h.app);
    const problem = expectProblem(await post(h.app, `/v1/tasks/${task.id}/retry`), 409, 'PUNCTUAL_INVALID_STATE');
    expect(problem.detail).toBe('task is scheduled; only a failed task can be retried');
    expectProblem(await post(h.app, `/v1/tasks/${UNKNOWN_ID}/retry`), 404, 'PUNCTUAL_TASK_NOT_FOUND');
  });

  it('schedules a failed task again with a fresh set of attempts', async () => {
    const failed = (await h.app.inject({ url: `/v1/tasks/${failedId}` })).json();
    expect(failed).toMatchObject({ state: 'failed', attempts: 1 });
    expect(failed.last_error).toContain('private');
    expect(failed.attempt_log).toEqual([
      expect.objectContaining({ attempt: 1, outcome: 'failed', lease_owner: h.punctual.nodeId }),
    ]);
    const res = await post(h.app, `/v1/tasks/${failedId}/retry`);
    expect(res.statusCode, res.body).toBe(200);
    // The reply is the task as the retry left it (the dispatcher may pick it up right after).
    expect(res.json()).toMatchObject({ id: failedId, state: 'scheduled', attempts: 0, finished_at: null });
  });
});
