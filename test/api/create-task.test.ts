import Value from 'typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskResource } from '../../src/core/schemas.ts';
import { createTask, expectProblem, FUTURE, type Harness, post, startHarness } from './harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const valid = { name: 'send-email', scheduled_date: FUTURE };

const RESOURCE_KEYS = [
  'id',
  'namespace',
  'name',
  'description',
  'payload',
  'target',
  'state',
  'scheduled_date',
  'deadline',
  'max_attempts',
  'timeout_ms',
  'backoff',
  'idempotency_key',
  'attempts',
  'lease',
  'last_error',
  'created_at',
  'updated_at',
  'finished_at',
].sort();

describe('POST /v1/tasks', () => {
  it('accepts the original payload (name, description, scheduled_date) and answers 201 with the task', async () => {
    const before = Date.now();
    const res = await post(h.app, '/v1/tasks', {
      name: 'send-email',
      description: 'welcome mail',
      scheduled_date: '2099-06-01T10:00:00+02:00',
    });
    expect(res.statusCode).toBe(201);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const task = res.json();
    expect(Value.Check(TaskResource, task), res.body).toBe(true);
    expect(Object.keys(task).sort()).toEqual(RESOURCE_KEYS);
    expect(res.headers.location).toBe(`/v1/tasks/${task.id}`);
    expect(task).toMatchObject({
      name: 'send-email',
      description: 'welcome mail',
      namespace: 'default',
      state: 'scheduled',
      attempts: 0,
      scheduled_date: '2099-06-01T08:00:00.000Z',
      deadline: null,
      payload: null,
      // No target and no handler for the name: it waits for remote workers on the queue named after it.
      target: { type: 'worker', queue: 'send-email' },
      max_attempts: 3,
      timeout_ms: 30000,
      backoff: { type: 'exponential', base_ms: 1000, factor: 2, max_ms: 3600000, jitter: true },
      idempotency_key: null,
      lease: null,
      last_error: null,
      finished_at: null,
    });
    expect(Date.parse(task.created_at)).toBeGreaterThanOrEqual(before - 1);
    expect(task.updated_at).toBe(task.created_at);
    // Durable before the reply: the store has it.
    expect((await h.store.taskGet({ id: task.id }))?.name).toBe('send-email');
  });

  it('keeps every optional field it is given', async () => {
    const task = await createTask(h.app, {
      description: null,
      payload: { to: 'a@example.com', n: [1, 2] },
      target: { type: 'http', url: 'https://example.com/hook', method: 'PUT', headers: { 'x-api-key': 's3cret' } },
      deadline: '2099-01-01T10:00:00Z',
      max_attempts: 5,
      timeout_ms: 1000,
      backoff: { base_ms: 50, jitter: false },
      namespace: 'billing',
    });
    expect(task).toMatchObject({
      payload: { to: 'a@example.com', n: [1, 2] },
      target: { type: 'http', url: 'https://example.com/hook', method: 'PUT', headers: { 'x-api-key': 's3cret' } },
      deadline: '2099-01-01T10:00:00.000Z',
      max_attempts: 5,
      timeout_ms: 1000,
      backoff: { type: 'exponential', base_ms: 50, factor: 2, max_ms: 3600000, jitter: false },
      namespace: 'billing',
    });
  });

  it('accepts a date in the past (it means "run now")', async () => {
    const res = await post(h.app, '/v1/tasks', { name: 'late', scheduled_date: '2001-01-01T00:00:00Z' });
    expect(res.statusCode).toBe(201);
    expect(res.json().scheduled_date).toBe('2001-01-01T00:00:00.000Z');
  });
});

describe('POST /v1/tasks rejects bad input with a problem naming the field', () => {
  const cases: [string, unknown, string, string][] = [
    ['missing name', { scheduled_date: FUTURE }, '/name', 'required'],
    ['empty name', { ...valid, name: '' }, '/name', 'minLength'],
    ['whitespace name', { ...valid, name: ' \t ' }, '/name', 'pattern'],
    ['name of 201 characters', { ...valid, name: 'x'.repeat(201) }, '/name', 'maxLength'],
    ['missing scheduled_date', { name: 'x' }, '/scheduled_date', 'required'],
    ['scheduled_date without offset', { ...valid, scheduled_date: '2099-01-01T09:00:00' }, '/scheduled_date', 'format'],
    ['scheduled_date that is not a date', { ...valid, scheduled_date: 'tomorrow' }, '/scheduled_date', 'format'],
    ['scheduled_date on Feb 30', { ...valid, scheduled_date: '2099-02-30T09:00:00Z' }, '/scheduled_date', 'format'],
    ['scheduled_date as a number', { ...valid, scheduled_date: 4070941200000 }, '/scheduled_date', 'type'],
    ['name as a number (no coercion)', { ...valid, name: 5 }, '/name', 'type'],
    ['description as a number', { ...valid, description: 5 }, '/description', 'type'],
    ['description too long', { ...valid, description: 'd'.repeat(10_001) }, '/description', 'maxLength'],
    ['target as a string', { ...valid, target: 'http' }, '/target', 'type'],
    ['target without type', { ...valid, target: {} }, '/target/type', 'required'],
    ['target of unknown type', { ...valid, target: { type: 'sqs' } }, '/target/type', 'enum'],
    ['kafka target without topic', { ...valid, target: { type: 'kafka' } }, '/target/topic', 'required'],
    [
      'kafka target with a topic name Kafka refuses',
      { ...valid, target: { type: 'kafka', topic: 'a topic' } },
      '/target/topic',
      'pattern',
    ],
    [
      'kafka target with an empty key',
      { ...valid, target: { type: 'kafka', topic: 't', key: '' } },
      '/target/key',
      'minLength',
    ],
    [
      'kafka target with an unknown field',
      { ...valid, target: { type: 'kafka', topic: 't', partition: 1 } },
      '/target/partition',
      'additionalProperties',
    ],
    [
      'kafka target with await_result that is not a boolean',
      { ...valid, target: { type: 'kafka', topic: 't', await_result: 'yes' } },
      '/target/await_result',
      'type',
    ],
    ['http target without url', { ...valid, target: { type: 'http' } }, '/target/url', 'required'],
    [
      'http target with a zero timeout',
      { ...valid, target: { type: 'http', url: 'https://example.com/h', timeout_ms: 0 } },
      '/target/timeout_ms',
      'minimum',
    ],
    [
      'http target with an ftp url',
      { ...valid, target: { type: 'http', url: 'ftp://example.com/x' } },
      '/target/url',
      'pattern',
    ],
    [
      'http target with a url that is not one',
      { ...valid, target: { type: 'http', url: 'http://exa mple.com' } },
      '/target/url',
      'format',
    ],
    [
      'http target with a bad method',
      { ...valid, target: { type: 'http', url: 'http://a.example', method: 'TRACE' } },
      '/target/method',
      'enum',
    ],
    [
      'http target with a non-string header',
      { ...valid, target: { type: 'http', url: 'http://a.example', headers: { a: 1 } } },
      '/target/headers/a',
      'type',
    ],
    [
      'http target with a bad header name',
      { ...valid, target: { type: 'http', url: 'http://a.example', headers: { 'a b': 'x' } } },
      '/target/headers/a b',
      'propertyNames',
    ],
    [
      'handler target with a url',
      { ...valid, target: { type: 'handler', url: 'http://a.example' } },
      '/target/url',
      'additionalProperties',
    ],
    ['deadline as a number', { ...valid, deadline: 5 }, '/deadline', 'type'],
    ['deadline without offset', { ...valid, deadline: '2099-01-02T00:00:00' }, '/deadline', 'format'],
    ['deadline before scheduled_date', { ...valid, deadline: '2098-12-31T00:00:00Z' }, '/deadline', 'minimum'],
    ['max_attempts as a string', { ...valid, max_attempts: '3' }, '/max_attempts', 'type'],
    ['max_attempts fractional', { ...valid, max_attempts: 1.5 }, '/max_attempts', 'type'],
    ['max_attempts 0', { ...valid, max_attempts: 0 }, '/max_attempts', 'minimum'],
    ['max_attempts 101', { ...valid, max_attempts: 101 }, '/max_attempts', 'maximum'],
    ['timeout_ms as a boolean', { ...valid, timeout_ms: true }, '/timeout_ms', 'type'],
    ['timeout_ms under 100', { ...valid, timeout_ms: 99 }, '/timeout_ms', 'minimum'],
    ['timeout_ms over an hour', { ...valid, timeout_ms: 3_600_001 }, '/timeout_ms', 'maximum'],
    ['backoff as a string', { ...valid, backoff: 'fast' }, '/backoff', 'type'],
    ['backoff with an unknown field', { ...valid, backoff: { base: 1 } }, '/backoff/base', 'additionalProperties'],
    ['backoff factor as a string', { ...valid, backoff: { factor: '2' } }, '/backoff/factor', 'type'],
    ['idempotency_key as a number', { ...valid, idempotency_key: 5 }, '/idempotency_key', 'type'],
    ['empty idempotency_key', { ...valid, idempotency_key: '' }, '/idempotency_key', 'minLength'],
    [
      'idempotency_key of 256 characters',
      { ...valid, idempotency_key: 'k'.repeat(256) },
      '/idempotency_key',
      'maxLength',
    ],
    ['namespace as a number', { ...valid, namespace: 5 }, '/namespace', 'type'],
    ['namespace with capitals', { ...valid, namespace: 'Billing' }, '/namespace', 'pattern'],
    ['an unknown field', { ...valid, scheduledDate: FUTURE }, '/scheduledDate', 'additionalProperties'],
    ['an array body', [valid], '', 'type'],
  ];

  it.each(cases)('%s', async (_label, body, field, rule) => {
    const res = await post(h.app, '/v1/tasks', body);
    const problem = expectProblem(res, 400, 'PUNCTUAL_VALIDATION_FAILED', field, rule);
    expect(problem.errors).toHaveLength(1);
    expect(problem.detail).toContain(field === '' ? 'request body' : field);
  });

  it('a payload over 256 KiB serialized → 413 naming /payload', async () => {
    const res = await post(h.app, '/v1/tasks', { ...valid, payload: { blob: 'x'.repeat(256 * 1024) } });
    expectProblem(res, 413, 'PUNCTUAL_PAYLOAD_TOO_LARGE', '/payload', 'maxBytes');
  });

  it('a payload of exactly 256 KiB is accepted', async () => {
    const blob = 'x'.repeat(256 * 1024 - 2); // the quotes make up the rest
    const res = await post(h.app, '/v1/tasks', { ...valid, payload: blob });
    expect(res.statusCode).toBe(201);
  });

  it('a body over the limit → 413', async () => {
    const res = await post(h.app, '/v1/tasks', { ...valid, payload: 'x'.repeat(1024 * 1024 + 1) });
    expectProblem(res, 413, 'PUNCTUAL_PAYLOAD_TOO_LARGE');
  });

  it('malformed JSON → 400 PUNCTUAL_MALFORMED_JSON', async () => {
    const res = await post(h.app, '/v1/tasks', '{"name": "x", ', { 'content-type': 'application/json' });
    expectProblem(res, 400, 'PUNCTUAL_MALFORMED_JSON');
  });

  it('prototype poisoning is refused as malformed JSON', async () => {
    const res = await post(h.app, '/v1/tasks', '{"__proto__": {"admin": true}}', {
      'content-type': 'application/json',
    });
    expectProblem(res, 400, 'PUNCTUAL_MALFORMED_JSON');
  });

  it('an empty body → 400 naming the body', async () => {
    const res = await post(h.app, '/v1/tasks', '', { 'content-type': 'application/json' });
    expectProblem(res, 400, 'PUNCTUAL_VALIDATION_FAILED', '', 'required');
  });

  it('no body at all → 400 naming the body', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/tasks' });
    expectProblem(res, 400, 'PUNCTUAL_VALIDATION_FAILED', '', 'required');
  });

  it('a text/plain body → 415', async () => {
    const res = await post(h.app, '/v1/tasks', JSON.stringify(valid), { 'content-type': 'text/plain' });
    expectProblem(res, 415, 'PUNCTUAL_UNSUPPORTED_MEDIA_TYPE');
  });

  it('a form-encoded body → 415', async () => {
    const res = await post(h.app, '/v1/tasks', 'name=x', { 'content-type': 'application/x-www-form-urlencoded' });
    expectProblem(res, 415, 'PUNCTUAL_UNSUPPORTED_MEDIA_TYPE');
  });

  it('a body without a content type → 415', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/tasks', payload: JSON.stringify(valid) });
    expectProblem(res, 415, 'PUNCTUAL_UNSUPPORTED_MEDIA_TYPE');
  });

  it('application/json with a charset is fine', async () => {
    const res = await post(h.app, '/v1/tasks', JSON.stringify(valid), {
      'content-type': 'application/json; charset=utf-8',
    });
    expect(res.statusCode).toBe(201);
  });
});

describe('idempotency', () => {
  it('a replay with the same key and body returns the first task with 200', async () => {
    const body = { ...valid, payload: { a: 1, b: [1, { c: 2 }] }, idempotency_key: 'order-1' };
    const first = await post(h.app, '/v1/tasks', body);
    expect(first.statusCode).toBe(201);
    const replay = await post(h.app, '/v1/tasks', body);
    expect(replay.statusCode).toBe(200);
    expect(replay.json().id).toBe(first.json().id);
    expect(replay.headers.location).toBe(`/v1/tasks/${first.json().id}`);
  });

  it('the same request spelt differently (key order, offset, explicit defaults) is a replay', async () => {
    const first = await post(h.app, '/v1/tasks', {
      name: 'x',
      scheduled_date: '2099-01-01T09:00:00Z',
      payload: { a: 1, b: 2 },
      idempotency_key: 'order-2',
    });
    const replay = await post(h.app, '/v1/tasks', {
      idempotency_key: 'order-2',
      payload: { b: 2, a: 1 },
      max_attempts: 3,
      scheduled_date: '2099-01-01T10:00:00+01:00',
      name: 'x',
    });
    expect(replay.statusCode).toBe(200);
    expect(replay.json().id).toBe(first.json().id);
  });

  it('the same key with a different body → 409 PUNCTUAL_IDEMPOTENCY_CONFLICT', async () => {
    await post(h.app, '/v1/tasks', { ...valid, idempotency_key: 'order-3' });
    const res = await post(h.app, '/v1/tasks', { ...valid, payload: { changed: true }, idempotency_key: 'order-3' });
    expectProblem(res, 409, 'PUNCTUAL_IDEMPOTENCY_CONFLICT');
  });

  it('the same key in another namespace is another task', async () => {
    const a = await post(h.app, '/v1/tasks', { ...valid, idempotency_key: 'order-4' });
    const b = await post(h.app, '/v1/tasks', { ...valid, idempotency_key: 'order-4', namespace: 'other' });
    expect(b.statusCode).toBe(201);
    expect(b.json().id).not.toBe(a.json().id);
  });

  it('the Idempotency-Key header works like the body field', async () => {
    const first = await post(h.app, '/v1/tasks', valid, { 'idempotency-key': 'hdr-1' });
    expect(first.statusCode).toBe(201);
    expect(first.json().idempotency_key).toBe('hdr-1');
    const replay = await post(h.app, '/v1/tasks', { ...valid, idempotency_key: 'hdr-1' });
    expect(replay.statusCode).toBe(200);
    expect(replay.json().id).toBe(first.json().id);
    const conflict = await post(h.app, '/v1/tasks', { ...valid, name: 'other' }, { 'idempotency-key': 'hdr-1' });
    expectProblem(conflict, 409, 'PUNCTUAL_IDEMPOTENCY_CONFLICT');
  });

  it('a header and a body key that differ → 400', async () => {
    const res = await post(h.app, '/v1/tasks', { ...valid, idempotency_key: 'a' }, { 'idempotency-key': 'b' });
    expectProblem(res, 400, 'PUNCTUAL_VALIDATION_FAILED', '/idempotency_key', 'const');
  });

  it('an Idempotency-Key header over 255 characters → 400 naming the header', async () => {
    const res = await post(h.app, '/v1/tasks', valid, { 'idempotency-key': 'k'.repeat(256) });
    expectProblem(res, 400, 'PUNCTUAL_VALIDATION_FAILED', '/headers/idempotency-key', 'maxLength');
  });
});
