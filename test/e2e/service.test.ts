/**
 * End-to-end: the real `punctual serve` process, real HTTP, a real webhook receiver on loopback.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Receiver, startReceiver } from '../helpers/http-receiver.ts';
import { api, type ServiceProcess, startService } from '../helpers/service-process.ts';
import { waitUntil } from '../helpers/wait.ts';

const HANDLERS = resolve(import.meta.dirname, 'fixtures/handlers.js');

let service: ServiceProcess;
let receiver: Receiver;
let runLog: string;

const inMs = (ms: number): string => new Date(Date.now() + ms).toISOString();

function runs(taskId: string): string[] {
  return readFileSync(runLog, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith(taskId));
}

async function taskIn(id: string, states: string[]): Promise<any> {
  return waitUntil(
    async () => {
      const { body } = await api(service.url, `/v1/tasks/${id}`);
      return states.includes(body.state) ? body : undefined;
    },
    { what: `task ${id} to be ${states.join('|')}` },
  );
}

beforeAll(async () => {
  runLog = join(mkdtempSync(join(tmpdir(), 'punctual-runs-')), 'runs.log');
  writeFileSync(runLog, '');
  receiver = await startReceiver();
  service = await startService({ handlers: HANDLERS, env: { E2E_RUN_LOG: runLog } });
});

afterAll(async () => {
  await service?.kill('SIGTERM');
  await receiver?.close();
});

describe('punctual serve', () => {
  it('answers /healthz once ready', async () => {
    const { status, body } = await api(service.url, '/healthz');
    expect(status).toBe(200);
    expect(body.status).toBe('ok');
  });

  it('accepts the original payload and runs it by its handler', async () => {
    const created = await api(service.url, '/v1/tasks', {
      body: { name: 'send-email', description: 'welcome mail', scheduled_date: inMs(300) },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'send-email', description: 'welcome mail' });
    // Due within the lookahead: inserted already leased to this node (create-and-claim).
    expect(created.body).toMatchObject({ state: 'running', attempts: 1 });
    const done = await taskIn(created.body.id, ['succeeded']);
    expect(done.attempts).toBe(1);
    expect(done.attempt_log).toHaveLength(1);
    expect(done.attempt_log[0].outcome).toBe('succeeded');
    expect(Date.parse(done.attempt_log[0].started_at)).toBeGreaterThanOrEqual(Date.parse(created.body.scheduled_date));
    expect(runs(created.body.id)).toEqual([`${created.body.id} 1 send-email`]);
  });

  it('delivers a webhook with the task id, attempt and idempotency key', async () => {
    const created = await api(service.url, '/v1/tasks', {
      body: {
        name: 'notify',
        description: 'webhook',
        scheduled_date: inMs(100),
        payload: { order: 42 },
        target: { type: 'http', url: `${receiver.url}/hook`, headers: { 'x-custom': 'yes' } },
      },
    });
    expect(created.status).toBe(201);
    await taskIn(created.body.id, ['succeeded']);
    const request = receiver.requests.find((r) => r.headers['punctual-task-id'] === created.body.id);
    expect(request?.path).toBe('/hook');
    expect(request?.headers['punctual-attempt']).toBe('1');
    expect(request?.headers['idempotency-key']).toBe(created.body.id);
    expect(request?.headers['x-custom']).toBe('yes');
    expect(request?.body).toMatchObject({ id: created.body.id, name: 'notify', payload: { order: 42 } });
  });

  it('retries a failing webhook with backoff, then fails it for good', async () => {
    receiver.setResponder((req) =>
      req.path === '/always-500' ? { status: 500, body: 'upstream down' } : { status: 200 },
    );
    const created = await api(service.url, '/v1/tasks', {
      body: {
        name: 'notify',
        description: 'always fails',
        scheduled_date: inMs(0),
        max_attempts: 3,
        backoff: { base_ms: 20, jitter: false },
        target: { type: 'http', url: `${receiver.url}/always-500` },
      },
    });
    const failed = await taskIn(created.body.id, ['failed']);
    expect(failed.attempts).toBe(3);
    expect(failed.last_error).toContain('500');
    expect(failed.attempt_log.map((a: any) => a.outcome)).toEqual(['retry', 'retry', 'failed']);
    const deliveries = receiver.requests.filter((r) => r.headers['punctual-task-id'] === created.body.id);
    expect(deliveries.map((r) => r.headers['punctual-attempt'])).toEqual(['1', '2', '3']);
    expect(new Set(deliveries.map((r) => r.headers['idempotency-key']))).toEqual(new Set([created.body.id]));
    // Backoff: 20 ms then 40 ms between attempts (no jitter).
    const gaps = deliveries.slice(1).map((r, i) => r.receivedAt - (deliveries[i] as any).receivedAt);
    expect(gaps[0]).toBeGreaterThanOrEqual(20);
    expect(gaps[1]).toBeGreaterThanOrEqual(40);
  });

  it('fails a 4xx webhook at once without retrying', async () => {
    receiver.setResponder((req) => (req.path === '/gone' ? { status: 410 } : { status: 200 }));
    const created = await api(service.url, '/v1/tasks', {
      body: { name: 'notify', scheduled_date: inMs(0), target: { type: 'http', url: `${receiver.url}/gone` } },
    });
    const failed = await taskIn(created.body.id, ['failed']);
    expect(failed.attempts).toBe(1);
    expect(failed.last_error).toContain('410');
  });

  it('retries a handler that throws, and succeeds on the next attempt', async () => {
    const created = await api(service.url, '/v1/tasks', {
      body: { name: 'flaky', scheduled_date: inMs(0), backoff: { base_ms: 10, jitter: false } },
    });
    const done = await taskIn(created.body.id, ['succeeded']);
    expect(done.attempts).toBe(2);
    expect(done.attempt_log[0]).toMatchObject({ outcome: 'retry', error: 'flaky failure on first attempt' });
    expect(runs(created.body.id)).toHaveLength(2);
  });

  it('sends a task with no handler and no target to the worker queue named after it', async () => {
    const created = await api(service.url, '/v1/tasks', {
      body: { name: 'nobody-handles-this', description: 'x', scheduled_date: inMs(0) },
    });
    expect(created.body.target).toEqual({ type: 'worker', queue: 'nobody-handles-this' });
    // No node runs it: it waits for a worker, unclaimed.
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect((await api(service.url, `/v1/tasks/${created.body.id}`)).body).toMatchObject({
      state: 'scheduled',
      attempts: 0,
    });
    const claim = await api(service.url, '/v1/queues/nobody-handles-this/claim', { body: { wait_ms: 5_000 } });
    expect(claim.body.tasks).toHaveLength(1);
    expect(claim.body.tasks[0]).toMatchObject({ id: created.body.id, state: 'running', attempts: 1 });
  });

  it('cancels a scheduled task, which then never runs', async () => {
    const created = await api(service.url, '/v1/tasks', {
      body: { name: 'send-email', scheduled_date: inMs(600) },
    });
    const canceled = await api(service.url, `/v1/tasks/${created.body.id}/cancel`, { method: 'POST' });
    expect(canceled.status).toBe(200);
    expect(canceled.body.state).toBe('canceled');
    const again = await api(service.url, `/v1/tasks/${created.body.id}/cancel`, { method: 'POST' });
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toContain('application/problem+json');
    await new Promise((r) => setTimeout(r, 900));
    expect(runs(created.body.id)).toEqual([]);
    expect((await api(service.url, `/v1/tasks/${created.body.id}`)).body.state).toBe('canceled');
  });

  it('reschedules a task and runs it at its new time', async () => {
    const created = await api(service.url, '/v1/tasks', {
      body: { name: 'send-email', scheduled_date: inMs(3_600_000) },
    });
    const newTime = inMs(200);
    const patched = await api(service.url, `/v1/tasks/${created.body.id}`, {
      method: 'PATCH',
      body: { scheduled_date: newTime },
    });
    expect(patched.status).toBe(200);
    expect(Date.parse(patched.body.scheduled_date)).toBe(Date.parse(newTime));
    const done = await taskIn(created.body.id, ['succeeded']);
    expect(Date.parse(done.attempt_log[0].started_at)).toBeGreaterThanOrEqual(Date.parse(newTime));
  });

  it('runs a far-future task now on request', async () => {
    const created = await api(service.url, '/v1/tasks', {
      body: { name: 'send-email', scheduled_date: inMs(86_400_000) },
    });
    expect((await api(service.url, `/v1/tasks/${created.body.id}/run`, { method: 'POST' })).status).toBe(200);
    await taskIn(created.body.id, ['succeeded']);
  });

  it('retries a failed task on request', async () => {
    const created = await api(service.url, '/v1/tasks', {
      body: { name: 'broken', scheduled_date: inMs(0), max_attempts: 1 },
    });
    await taskIn(created.body.id, ['failed']);
    const retried = await api(service.url, `/v1/tasks/${created.body.id}/retry`, { method: 'POST' });
    expect(retried.status).toBe(200);
    await waitUntil(() => runs(created.body.id).length === 2 || undefined, { what: 'second run' });
    await taskIn(created.body.id, ['failed']);
  });

  it('replays an idempotent create and refuses the key for another body', async () => {
    const body = { name: 'send-email', scheduled_date: inMs(3_600_000) };
    const headers = { 'idempotency-key': `order-${Date.now()}` };
    const first = await api(service.url, '/v1/tasks', { body, headers });
    const replay = await api(service.url, '/v1/tasks', { body, headers });
    expect(first.status).toBe(201);
    expect(replay.status).toBe(200);
    expect(replay.body.id).toBe(first.body.id);
    const other = await api(service.url, '/v1/tasks', { body: { ...body, description: 'other' }, headers });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('PUNCTUAL_IDEMPOTENCY_CONFLICT');
  });

  it('creates a batch in one call with a result per item', async () => {
    const tasks = Array.from({ length: 50 }, (_, i) => ({ name: 'send-email', scheduled_date: inMs(200 + i) }));
    const { status, body } = await api(service.url, '/v1/tasks/batch', { body: { tasks } });
    expect(status).toBe(200);
    expect(body.results).toHaveLength(50);
    expect(body.results.every((r: any) => r.status === 'created')).toBe(true);
    for (const r of body.results) await taskIn(r.task.id, ['succeeded']);
  });

  it('looks tasks up by state and pages through them', async () => {
    const { status, body } = await api(service.url, '/v1/tasks?state=succeeded&limit=5');
    expect(status).toBe(200);
    expect(body.tasks).toHaveLength(5);
    expect(body.next_cursor).toEqual(expect.any(String));
    const next = await api(service.url, `/v1/tasks?state=succeeded&limit=5&cursor=${body.next_cursor}`);
    expect(next.body.tasks[0].id).not.toBe(body.tasks[0].id);
    expect((await api(service.url, '/v1/tasks/01890000-0000-7000-8000-000000000000')).status).toBe(404);
  });
});

describe('bad input over real HTTP', () => {
  const valid = { name: 'send-email', description: 'd', scheduled_date: '2030-01-01T00:00:00Z' };
  const cases: Array<[string, unknown, number, string]> = [
    ['missing name', { description: 'd', scheduled_date: valid.scheduled_date }, 400, '/name'],
    ['empty name', { ...valid, name: '' }, 400, '/name'],
    ['name over 200 characters', { ...valid, name: 'x'.repeat(201) }, 400, '/name'],
    ['date without offset', { ...valid, scheduled_date: '2030-01-01T00:00:00' }, 400, '/scheduled_date'],
    ['date that is not a date', { ...valid, scheduled_date: 'tomorrow' }, 400, '/scheduled_date'],
    ['number as name', { ...valid, name: 5 }, 400, '/name'],
    ['unknown field', { ...valid, colour: 'blue' }, 400, '/colour'],
    ['payload over 256 KiB', { ...valid, payload: 'x'.repeat(300 * 1024) }, 413, '/payload'],
  ];
  it.each(cases)('%s → %i naming %s', async (_label, body, status, field) => {
    const response = await api(service.url, '/v1/tasks', { body });
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect(JSON.stringify(response.body.errors ?? [])).toContain(field);
  });

  it('malformed JSON → 400 problem', async () => {
    const response = await fetch(`${service.url}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"name": ',
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect(((await response.json()) as { code: string }).code).toBe('PUNCTUAL_MALFORMED_JSON');
  });

  it('wrong content type → 415 problem', async () => {
    const response = await fetch(`${service.url}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'name=x',
    });
    expect(response.status).toBe(415);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
  });
});
