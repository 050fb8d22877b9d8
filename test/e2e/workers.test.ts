/**
 * Remote workers end to end: `punctual serve` and four worker processes built on the SDK's Worker,
 * serving the queue that tasks posted with just a name go to. One worker is killed with -9 mid-run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open-store.ts';
import { api, type ServiceProcess, startService, tempDbUrl } from '../helpers/service-process.ts';
import { waitUntil } from '../helpers/wait.ts';

const WORKER = join(import.meta.dirname, 'fixtures', 'worker.ts');
const dir = mkdtempSync(join(tmpdir(), 'punctual-workers-'));
const runLog = join(dir, 'runs.log');
const workers: ChildProcess[] = [];
let service: ServiceProcess | undefined;

afterAll(async () => {
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  await service?.kill();
  rmSync(dir, { recursive: true, force: true });
});

function startWorker(url: string, queue: string, concurrency: number, handlerMs: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [WORKER, url, queue, String(concurrency), String(handlerMs)], {
    env: { ...process.env, E2E_RUN_LOG: runLog },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  workers.push(child);
  return new Promise((resolve, reject) => {
    child.stdout?.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`worker exited early (${code})`)));
  });
}

/** Lines of the run log: one per handler start. */
function runs(): { id: string; pid: number }[] {
  return readFileSync(runLog, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [id, , pid] = line.split(' ');
      return { id: id as string, pid: Number(pid) };
    });
}

describe('remote workers', () => {
  it('run 10,000 tasks across 4 workers, one killed -9 mid-run: 0 lost, duplicates at most its in-flight tasks', {
    timeout: 180_000,
  }, async () => {
    const store = tempDbUrl();
    service = await startService({ store });
    const concurrency = 25;
    const pool = await Promise.all(
      Array.from({ length: 4 }, () => startWorker(service?.url as string, 'e2e-remote', concurrency, 10)),
    );

    // The original payload: a name, a description and a time, no target. No node has a handler
    // for the name, so the tasks wait in the queue named after it.
    const count = 10_000;
    const firstDueAt = Date.now() + 3_000;
    for (let offset = 0; offset < count; offset += 1_000) {
      const tasks = Array.from({ length: 1_000 }, (_, i) => ({
        name: 'e2e-remote',
        description: `task ${offset + i}`,
        scheduled_date: new Date(firstDueAt + Math.floor((offset + i) / 2)).toISOString(),
        timeout_ms: 3_000,
      }));
      const { status, body } = await api(service.url, '/v1/tasks/batch', { body: { tasks } });
      expect(status).toBe(200);
      expect(body.results[0].task.target).toEqual({ type: 'worker', queue: 'e2e-remote' });
    }

    const victim = pool[0] as ChildProcess;
    await waitUntil(() => runs().length >= 3_000 || undefined, { timeoutMs: 60_000, what: '3,000 runs' });
    victim.kill('SIGKILL');

    const seen = await waitUntil(
      () => {
        const ids = new Set(runs().map((r) => r.id));
        return ids.size >= count ? ids : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250, what: 'every task to run' },
    );
    expect(seen.size).toBe(count);

    const reader = await openStore(store);
    try {
      await waitUntil(async () => (await reader.taskCountByState()).succeeded === count || undefined, {
        timeoutMs: 30_000,
        what: 'every task to succeed',
      });
    } finally {
      await reader.close();
    }

    const all = runs();
    const byId = new Map<string, number[]>();
    for (const { id, pid } of all) byId.set(id, [...(byId.get(id) ?? []), pid]);
    const repeated = [...byId.entries()].filter(([, pids]) => pids.length > 1);
    // Only tasks the killed worker had started can run again, and it never held more than its
    // concurrency at once.
    for (const [, pids] of repeated) expect(pids[0]).toBe(victim.pid);
    expect(repeated.length).toBeLessThanOrEqual(concurrency);
    // Every worker took part.
    expect(new Set(all.map((r) => r.pid)).size).toBe(4);
  });

  it('a node shutting down answers its waiting workers at once, and turns new claims away', {
    timeout: 60_000,
  }, async () => {
    const node = await startService();
    const waiting = api(node.url, '/v1/queues/idle-queue/claim', { body: { wait_ms: 30_000 } });
    await new Promise((resolve) => setTimeout(resolve, 300)); // the claim is waiting
    const stopAt = Date.now();
    const exited = node.kill('SIGTERM');
    const answer = await waiting;
    expect(answer).toMatchObject({ status: 200, body: { tasks: [] } });
    expect(await exited).toBe(0);
    // Not the 30 s of the long-poll.
    expect(Date.now() - stopAt).toBeLessThan(10_000);
  });
});
