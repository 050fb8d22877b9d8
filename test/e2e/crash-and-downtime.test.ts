/**
 * Durability end-to-end: kill -9 in the middle of a run, and hours of downtime (compressed to
 * seconds), against the real service process and a real SQLite file.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { type Receiver, startReceiver } from '../helpers/http-receiver.ts';
import { api, launchService, type ServiceProcess, startService, tempDbUrl } from '../helpers/service-process.ts';
import { waitUntil } from '../helpers/wait.ts';

const HANDLERS = resolve(import.meta.dirname, 'fixtures/handlers.js');
const FAST_RECOVERY = { PUNCTUAL_LEASE_GRACE_MS: '300' };
let receiver: Receiver | undefined;
let service: ServiceProcess | undefined;

afterEach(async () => {
  await service?.kill('SIGKILL');
  await receiver?.close();
  service = undefined;
  receiver = undefined;
});

function countByState(dbPath: string): Record<string, number> {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT state, count(*) AS n FROM tasks GROUP BY state').all() as {
      state: string;
      n: number;
    }[];
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  } finally {
    db.close();
  }
}

function deliveriesByTask(r: Receiver): Map<string, { attempts: string[]; keys: Set<string> }> {
  const byTask = new Map<string, { attempts: string[]; keys: Set<string> }>();
  for (const request of r.requests) {
    const id = String(request.headers['punctual-task-id']);
    const entry = byTask.get(id) ?? { attempts: [], keys: new Set<string>() };
    entry.attempts.push(String(request.headers['punctual-attempt']));
    entry.keys.add(String(request.headers['idempotency-key']));
    byTask.set(id, entry);
  }
  return byTask;
}

async function settled(r: Receiver, quietMs = 300): Promise<void> {
  let count = -1;
  while (count !== r.requests.length) {
    count = r.requests.length;
    await new Promise((resolve) => setTimeout(resolve, quietMs));
  }
}

async function createBatch(url: string, tasks: object[]): Promise<string[]> {
  const { status, body } = await api(url, '/v1/tasks/batch', { body: { tasks } });
  expect(status).toBe(200);
  return body.results.map((r: any) => r.task.id);
}

describe('kill -9 while 1,000 tasks are due', () => {
  it('loses none, leaves none stuck, and repeats at most the tasks in flight', async () => {
    receiver = await startReceiver({ responder: () => ({ status: 200, delayMs: 20 }) });
    const store = tempDbUrl();
    const dbPath = store.slice('sqlite:'.length);
    service = await startService({ store, env: FAST_RECOVERY });
    const start = Date.now() + 300;
    const tasks = Array.from({ length: 1_000 }, (_, i) => ({
      name: 'crash-test',
      scheduled_date: new Date(start + (i % 500)).toISOString(),
      timeout_ms: 1_000,
      target: { type: 'http', url: `${receiver?.url}/work` },
    }));
    const ids = await createBatch(service.url, tasks);
    expect(new Set(ids).size).toBe(1_000);

    await receiver.waitFor(300, 20_000);
    await service.kill('SIGKILL');
    // Requests the dead process sent just before dying may still be in the receiver's socket
    // buffers: let them land before counting what was delivered before the restart.
    await settled(receiver);
    const deliveredBeforeKill = new Set(receiver.requests.map((r) => String(r.headers['punctual-task-id'])));
    const atKill = countByState(dbPath);
    // Delivered but not recorded as done: the only tasks that may run twice.
    const inFlightAtKill = deliveredBeforeKill.size - (atKill.succeeded ?? 0);
    expect(atKill.running ?? 0).toBeGreaterThan(0);

    service = await startService({ store, env: FAST_RECOVERY });
    const final = await waitUntil(
      () => {
        const counts = countByState(dbPath);
        return counts.succeeded === 1_000 ? counts : undefined;
      },
      { timeoutMs: 30_000, what: 'all 1,000 tasks to succeed after the restart' },
    );
    expect(final).toEqual({ succeeded: 1_000 });

    const byTask = deliveriesByTask(receiver);
    expect([...byTask.keys()].sort()).toEqual([...ids].sort()); // none lost
    const duplicates = receiver.requests.length - byTask.size;
    expect(duplicates).toBeLessThanOrEqual(inFlightAtKill);
    for (const { attempts, keys } of byTask.values()) {
      expect(keys.size).toBe(1); // a redelivery carries the same idempotency key
      if (attempts.length > 1) expect(Number(attempts.at(-1))).toBeGreaterThan(Number(attempts[0]));
    }
  });
});

describe('a task that kills its node on every attempt', () => {
  it('ends failed after max_attempts instead of looping', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'punctual-poison-'));
    const runLog = join(dir, 'runs.log');
    writeFileSync(runLog, '');
    const store = `sqlite:${join(dir, 'punctual.db')}`;
    const options = { store, handlers: HANDLERS, env: { ...FAST_RECOVERY, E2E_RUN_LOG: runLog } };
    service = await startService(options);
    const created = await api(service.url, '/v1/tasks', {
      body: { name: 'poison', scheduled_date: new Date().toISOString(), max_attempts: 2, timeout_ms: 300 },
    });
    expect(created.status).toBe(201);
    expect(await service.exited).toBe('SIGKILL'); // attempt 1 took the node down
    // Attempt 2 comes once the first lease expires, maybe before the node even listens.
    expect(await launchService(options).exited).toBe('SIGKILL');
    service = await startService(options);
    const url = service.url;
    const task = await waitUntil(
      async () => {
        const { body } = await api(url, `/v1/tasks/${created.body.id}`);
        return body.state === 'failed' ? body : undefined;
      },
      { what: 'the poison task to fail' },
    );
    expect(task.attempts).toBe(2);
    expect(task.last_error).toMatch(/lease expired/);
    // Two attempts ended by a dead node (a tight test lease may add a 'released' entry, refunded).
    expect(task.attempt_log.filter((a: any) => a.outcome === 'lease_expired')).toHaveLength(2);
    expect(readFileSync(runLog, 'utf8').trim().split('\n')).toHaveLength(2);
  });
});

describe('downtime', () => {
  it('runs every task that fell due while the service was down, oldest first', async () => {
    receiver = await startReceiver();
    const store = tempDbUrl();
    const dbPath = store.slice('sqlite:'.length);
    service = await startService({ store, args: ['--concurrency', '1'] });
    const firstDue = Date.now() + 3_000;
    const tasks = Array.from({ length: 500 }, (_, i) => ({
      name: 'downtime-test',
      // Created in shuffled order so that "oldest first" cannot come from insertion order.
      scheduled_date: new Date(firstDue + ((i * 7) % 500)).toISOString(),
      target: { type: 'http', url: `${receiver?.url}/late` },
    }));
    await createBatch(service.url, tasks);
    expect(await service.kill('SIGTERM')).toBe(0);
    expect(receiver.requests).toHaveLength(0);

    await waitUntil(() => Date.now() > firstDue + 1_000 || undefined, { timeoutMs: 10_000, what: 'tasks to fall due' });
    service = await startService({ store, args: ['--concurrency', '1'] });
    await receiver.waitFor(500, 20_000);
    await waitUntil(() => countByState(dbPath).succeeded === 500 || undefined, { what: 'all 500 succeeded' });

    expect(new Set(receiver.requests.map((r) => r.headers['punctual-task-id'])).size).toBe(500);
    const scheduled = receiver.requests.map((r) => Date.parse(String(r.headers['punctual-scheduled-at'])));
    expect(scheduled).toEqual([...scheduled].sort((a, b) => a - b));
  });
});
