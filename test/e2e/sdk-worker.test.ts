/**
 * The SDK's Worker against a real service listening on loopback.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetworkError, PermanentError, Worker, type WorkerOptions } from '../../packages/client/src/index.ts';
import { type Harness, post, startHarness } from '../api/harness.ts';
import { waitUntil } from '../helpers/wait.ts';

let h: Harness;
let url: string;
const running: Worker[] = [];

beforeAll(async () => {
  // A short lease grace, so leases end (or must be extended) within a test.
  h = await startHarness({ settings: { leaseGraceMs: 200 } });
  url = await h.app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await Promise.all(running.map((w) => w.stop({ graceMs: 0 })));
  await h.close();
});

let queues = 0;
function startWorker(options: Omit<WorkerOptions, 'url' | 'queue'>): { worker: Worker; queue: string } {
  queues += 1;
  const queue = `sdk-${queues}-${Date.now()}`;
  const worker = new Worker({ url, queue, waitMs: 2_000, ...options });
  running.push(worker);
  worker.start();
  return { worker, queue };
}

async function schedule(queue: string, fields: Record<string, unknown> = {}): Promise<string> {
  const res = await post(h.app, '/v1/tasks', {
    name: 'sdk-job',
    scheduled_date: new Date().toISOString(),
    target: { type: 'worker', queue },
    ...fields,
  });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().id;
}

async function task(id: string) {
  return (await h.app.inject({ method: 'GET', url: `/v1/tasks/${id}` })).json();
}

async function settled(id: string, states: string[]) {
  return waitUntil(
    async () => {
      const t = await task(id);
      return states.includes(t.state) ? t : undefined;
    },
    { timeoutMs: 10_000, what: `task ${id} to be ${states.join(' or ')}` },
  );
}

describe('Worker', () => {
  it('runs a task with its payload; returning completes it', async () => {
    const seen: unknown[] = [];
    const { queue } = startWorker({ handler: (t) => void seen.push(t.payload) });
    const id = await schedule(queue, { payload: { report: 7 } });
    expect(await settled(id, ['succeeded'])).toMatchObject({ attempts: 1 });
    expect(seen).toEqual([{ report: 7 }]);
  });

  it('a throw fails the attempt (retried by the backoff); a PermanentError fails the task', async () => {
    const { queue } = startWorker({
      handler: (t) => {
        if (t.payload === 'permanent') throw new PermanentError('bad input');
        throw new Error('smtp down');
      },
    });
    const retried = await schedule(queue, { backoff: { base_ms: 60_000, jitter: false } });
    const failed = await schedule(queue, { payload: 'permanent' });
    expect(await settled(failed, ['failed'])).toMatchObject({ last_error: 'bad input', attempts: 1 });
    await waitUntil(async () => (await task(retried)).last_error === 'smtp down' || undefined);
    expect(await task(retried)).toMatchObject({ state: 'scheduled', attempts: 1 });
  });

  it('heartbeats keep the lease of a task that runs longer than it', async () => {
    let runs = 0;
    const { queue } = startWorker({
      handler: async () => {
        runs++;
        await new Promise((resolve) => setTimeout(resolve, 2_000));
      },
    });
    // Lease: 500 ms timeout + 200 ms grace, four times shorter than the work.
    const id = await schedule(queue, { timeout_ms: 500 });
    expect(await settled(id, ['succeeded', 'failed'])).toMatchObject({ state: 'succeeded', attempts: 1 });
    expect(runs).toBe(1);
  });

  it('a lost lease aborts the handler, and its outcome is not sent', async () => {
    let token = '';
    let aborted = false;
    const { queue } = startWorker({
      handler: async (t, { signal }) => {
        token = t.lease_token;
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        aborted = true;
        throw new Error('should not be recorded');
      },
    });
    const id = await schedule(queue, { timeout_ms: 600 });
    await waitUntil(() => token || undefined);
    // Someone else settles the task under the same lease: the worker's next heartbeat is a 409.
    expect((await post(h.app, `/v1/tasks/${id}/complete`, { lease_token: token })).statusCode).toBe(204);
    await waitUntil(() => aborted || undefined, { timeoutMs: 5_000, what: 'the handler to be aborted' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await task(id)).toMatchObject({ state: 'succeeded', last_error: null });
  });

  it('stop() finishes the running task, reports it, and claims no more', async () => {
    const { worker, queue } = startWorker({
      handler: () => new Promise((resolve) => setTimeout(resolve, 400)),
    });
    const id = await schedule(queue);
    await waitUntil(() => worker.active > 0 || undefined);
    await worker.stop();
    expect(worker.active).toBe(0);
    expect(await task(id)).toMatchObject({ state: 'succeeded' });
    const later = await schedule(queue);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await task(later)).toMatchObject({ state: 'scheduled', attempts: 0 });
  });

  it('retries an unreachable service with backoff, reporting each error, and still stops', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const errors: unknown[] = [];
    const worker = new Worker({
      url: `http://127.0.0.1:${closedPort}`,
      queue: 'nowhere',
      handler: () => {},
      onError: (e) => errors.push(e),
    });
    worker.start();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await worker.stop();
    expect(errors.length).toBeGreaterThan(1);
    expect(errors.every((e) => e instanceof NetworkError)).toBe(true);
    // Backoff: a connection refused takes well under a millisecond, so without it there would
    // be thousands of attempts in 1.5 s.
    expect(errors.length).toBeLessThan(30);
  });
});
