import { describe, expect, it } from 'vitest';
import {
  decodeCursor,
  encodeCursor,
  PAYLOAD_MAX_BYTES,
  resolveIdempotencyKey,
  toNewTask,
  toNewTasks,
  toTaskEdit,
  toTaskResource,
  toTaskWithAttemptsResource,
} from '../../src/api/task-resource.ts';
import { PunctualError } from '../../src/core/errors.ts';
import { DEFAULT_BACKOFF } from '../../src/core/task.ts';
import { makeTask } from '../helpers/task-factory.ts';

const ID = '01900000-0000-7000-8000-000000000001';
const body = { name: 'send', scheduled_date: '2099-01-01T09:00:00+01:00' };

/** The PunctualError `fn` throws, for assertions on its code and field. */
function thrown(fn: () => unknown): PunctualError {
  try {
    fn();
  } catch (error) {
    if (error instanceof PunctualError) return error;
    throw error;
  }
  throw new Error('expected a PunctualError');
}

describe('toNewTask', () => {
  it('applies the defaults and converts the time to epoch ms', () => {
    const task = toNewTask(body, '', ID, null);
    expect(task).toEqual({
      id: ID,
      namespace: 'default',
      name: 'send',
      description: null,
      payload: null,
      target: null,
      scheduledAt: Date.UTC(2099, 0, 1, 8),
      deadlineAt: null,
      maxAttempts: 3,
      timeoutMs: 30_000,
      backoff: DEFAULT_BACKOFF,
      idempotencyKey: null,
      requestHash: null, // nothing to tell a replay from without a key
    });
    expect(toNewTask(body, '', ID, 'k').requestHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('merges a partial backoff over the defaults', () => {
    const task = toNewTask({ ...body, backoff: { max_ms: 60_000, jitter: false } }, '', ID, null);
    expect(task.backoff).toEqual({ ...DEFAULT_BACKOFF, max_ms: 60_000, jitter: false });
  });

  it('hashes what defines the task, not how the JSON spelt it or which key it came with', () => {
    const a = toNewTask({ ...body, payload: { x: 1, y: { b: 2, a: 1 } } }, '', ID, 'k1');
    const b = toNewTask(
      { payload: { y: { a: 1, b: 2 }, x: 1 }, scheduled_date: '2099-01-01T08:00:00Z', name: 'send', max_attempts: 3 },
      '',
      '01900000-0000-7000-8000-000000000002',
      'k2',
    );
    expect(b.requestHash).toBe(a.requestHash);
    const c = toNewTask({ ...body, payload: { x: 1, y: { b: 2, a: 2 } } }, '', ID, 'k1');
    expect(c.requestHash).not.toBe(a.requestHash);
    expect(toNewTask({ ...body, namespace: 'other' }, '', ID, 'k').requestHash).not.toBe(
      toNewTask(body, '', ID, 'k').requestHash,
    );
  });

  it('names fields under the pointer of the task in its request', () => {
    const error = thrown(() => toNewTask({ ...body, deadline: '2000-01-01T00:00:00Z' }, '/tasks/7', ID, null));
    expect(error.code).toBe('PUNCTUAL_VALIDATION_FAILED');
    expect(error.errors).toEqual([{ field: '/tasks/7/deadline', rule: 'minimum', message: expect.any(String) }]);
  });

  it('accepts a deadline equal to the time', () => {
    expect(toNewTask({ ...body, deadline: body.scheduled_date }, '', ID, null).deadlineAt).toBe(
      Date.UTC(2099, 0, 1, 8),
    );
  });

  it('refuses a payload over 256 KiB serialized with 413 naming /payload', () => {
    expect(() => toNewTask({ ...body, payload: 'x'.repeat(PAYLOAD_MAX_BYTES - 2) }, '', ID, null)).not.toThrow();
    const error = thrown(() => toNewTask({ ...body, payload: 'x'.repeat(PAYLOAD_MAX_BYTES - 1) }, '', ID, null));
    expect(error.status).toBe(413);
    expect(error.errors[0]).toMatchObject({ field: '/payload', rule: 'maxBytes' });
  });

  it('counts the payload in bytes, not characters', () => {
    const error = thrown(() => toNewTask({ ...body, payload: 'é'.repeat(PAYLOAD_MAX_BYTES / 2) }, '', ID, null));
    expect(error.code).toBe('PUNCTUAL_PAYLOAD_TOO_LARGE');
  });

  it('refuses an http url without a host', () => {
    const error = thrown(() => toNewTask({ ...body, target: { type: 'http', url: 'http://' } }, '', ID, null));
    expect(error.errors[0]).toMatchObject({ field: '/target/url', rule: 'format' });
  });

  it('gives each task of a batch its own id and its own key', () => {
    let n = 0;
    const tasks = toNewTasks({ tasks: [body, { ...body, idempotency_key: 'k' }] }, () => `id-${n++}`);
    expect(tasks.map((t) => [t.id, t.idempotencyKey])).toEqual([
      ['id-0', null],
      ['id-1', 'k'],
    ]);
  });
});

describe('resolveIdempotencyKey', () => {
  it('takes the key from the body or the header, and both when they agree', () => {
    expect(resolveIdempotencyKey(undefined, undefined)).toBeNull();
    expect(resolveIdempotencyKey('a', undefined)).toBe('a');
    expect(resolveIdempotencyKey(undefined, 'b')).toBe('b');
    expect(resolveIdempotencyKey('c', 'c')).toBe('c');
  });

  it('refuses a body key and a header that differ', () => {
    expect(thrown(() => resolveIdempotencyKey('a', 'b')).errors[0]).toMatchObject({
      field: '/idempotency_key',
      rule: 'const',
    });
  });
});

describe('toTaskEdit', () => {
  const current = makeTask({ scheduledAt: Date.UTC(2099, 0, 1), deadlineAt: Date.UTC(2099, 0, 2) });

  it('converts only the given fields', () => {
    expect(toTaskEdit({ name: 'n', scheduled_date: '2099-01-01T12:00:00Z', deadline: null }, current)).toEqual({
      name: 'n',
      scheduledAt: Date.UTC(2099, 0, 1, 12),
      deadlineAt: null,
    });
  });

  it('merges a partial backoff over the current one', () => {
    const task = makeTask({ backoff: { ...DEFAULT_BACKOFF, base_ms: 5 } });
    expect(toTaskEdit({ backoff: { factor: 4 } }, task).backoff).toEqual({ ...DEFAULT_BACKOFF, base_ms: 5, factor: 4 });
  });

  it('checks the deadline against the time, whichever of the two changes', () => {
    expect(thrown(() => toTaskEdit({ deadline: '2098-12-31T00:00:00Z' }, current)).errors[0]).toMatchObject({
      field: '/deadline',
      rule: 'minimum',
    });
    expect(thrown(() => toTaskEdit({ scheduled_date: '2099-01-03T00:00:00Z' }, current)).errors[0]).toMatchObject({
      field: '/scheduled_date',
      rule: 'maximum',
    });
    expect(toTaskEdit({ scheduled_date: '2099-01-03T00:00:00Z', deadline: null }, current).deadlineAt).toBeNull();
  });
});

describe('toTaskResource', () => {
  it('speaks snake_case and RFC 3339, and never shows the lease token', () => {
    const task = makeTask({
      state: 'running',
      attempts: 1,
      leaseOwner: 'node-a',
      leaseToken: 'secret-token',
      leaseExpiresAt: Date.UTC(2099, 0, 1, 0, 0, 30),
      scheduledAt: Date.UTC(2099, 0, 1),
    });
    const resource = toTaskResource(task);
    expect(resource).toMatchObject({
      id: task.id,
      state: 'running',
      scheduled_date: '2099-01-01T00:00:00.000Z',
      lease: { owner: 'node-a', expires_at: '2099-01-01T00:00:30.000Z' },
      finished_at: null,
    });
    expect(JSON.stringify(resource)).not.toContain('secret-token');
    expect(toTaskResource(makeTask()).lease).toBeNull();
  });

  it('adds the attempt log for a single task', () => {
    const task = {
      ...makeTask(),
      attemptLog: [
        {
          taskId: 'x',
          attempt: 1,
          leaseOwner: 'node-a',
          claimedAt: Date.UTC(2099, 0, 1),
          startedAt: null,
          endedAt: null,
          outcome: null,
          error: null,
        },
      ],
    };
    expect(toTaskWithAttemptsResource(task).attempt_log).toEqual([
      {
        attempt: 1,
        lease_owner: 'node-a',
        claimed_at: '2099-01-01T00:00:00.000Z',
        started_at: null,
        ended_at: null,
        outcome: null,
        error: null,
      },
    ]);
  });
});

describe('cursors', () => {
  it('round-trip (scheduledAt, id) through an opaque url-safe string', () => {
    const cursor = encodeCursor({ scheduledAt: 4_070_908_800_000, id: ID });
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor)).toEqual({ scheduledAt: 4_070_908_800_000, id: ID });
  });

  it.each([
    ['empty', ''],
    ['not base64url', 'a+b/c='],
    ['not JSON', Buffer.from('nope').toString('base64url')],
    ['not a pair', Buffer.from('[1]').toString('base64url')],
    ['a fractional time', Buffer.from(`[1.5,"${ID}"]`).toString('base64url')],
    ['an id that is not a UUID', Buffer.from('[1,"abc"]').toString('base64url')],
  ])('refuse %s', (_label, text) => {
    const error = thrown(() => decodeCursor(text));
    expect(error.code).toBe('PUNCTUAL_INVALID_CURSOR');
    expect(error.errors[0]?.field).toBe('/cursor');
  });
});
