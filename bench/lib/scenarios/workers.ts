/**
 * workers: the worker protocol end to end. `punctual serve` and four remote worker processes (the
 * SDK's Worker, no-op handler) serving the queue that tasks posted with just a name go to.
 *
 * - latency: tasks due at a steady rate while the workers long-poll an empty queue; added latency
 *   = handler start in the worker − scheduled time (both wall clocks of this machine).
 * - throughput: a backlog due now, posted before the workers start; tasks/s between 10% and 90%
 *   of the handler starts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FreshStore } from '../env.ts';
import { trackChild, untrackChild } from '../env.ts';
import type { ScenarioResult } from '../report.ts';
import { withService } from '../service.ts';
import { distribution, fmtInt, fmtMs, note, round, roundAll, sleep } from '../stats.ts';
import { NOOP, taskBody } from '../tasks.ts';

const WORKER = join(import.meta.dirname, '..', 'remote-worker.ts');

export interface WorkersOptions {
  workers: number;
  concurrency: number;
  latency: { count: number; ratePerSec: number; leadMs: number };
  throughput: { count: number };
  timeoutMs: number;
}

interface Run {
  scheduledAt: number;
  startedAt: number;
}

function readRuns(file: string): Run[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [scheduledAt, startedAt] = line.split(' ').map(Number) as [number, number];
      return { scheduledAt, startedAt };
    });
}

async function startWorkers(url: string, o: WorkersOptions, log: string): Promise<ChildProcess[]> {
  return Promise.all(
    Array.from({ length: o.workers }, () => {
      const child = spawn(process.execPath, [WORKER, url, NOOP, String(o.concurrency), log], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      trackChild(child.pid as number);
      return new Promise<ChildProcess>((resolve, reject) => {
        child.stdout?.once('data', () => resolve(child));
        child.once('exit', (code) => reject(new Error(`a worker exited early (${code})`)));
      });
    }),
  );
}

async function stopWorkers(workers: ChildProcess[]): Promise<void> {
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          const killer = setTimeout(() => w.kill('SIGKILL'), 5_000);
          w.once('exit', () => {
            clearTimeout(killer);
            untrackChild(w.pid as number);
            resolve();
          });
          w.kill('SIGTERM');
        }),
    ),
  );
}

async function postTasks(url: string, bodies: object[]): Promise<void> {
  for (let first = 0; first < bodies.length; first += 1_000) {
    const response = await fetch(`${url}/v1/tasks/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tasks: bodies.slice(first, first + 1_000) }),
    });
    if (response.status !== 200) throw new Error(`batch create answered ${response.status}: ${await response.text()}`);
  }
}

async function waitForRuns(log: string, count: number, timeoutMs: number, label: string): Promise<Run[]> {
  const deadline = performance.now() + timeoutMs;
  let lastNote = performance.now();
  for (;;) {
    const runs = readRuns(log);
    if (runs.length >= count || performance.now() > deadline) return runs;
    if (performance.now() - lastNote > 5_000) {
      note(`  [${label}] ${fmtInt(runs.length)}/${fmtInt(count)} run`);
      lastNote = performance.now();
    }
    await sleep(200);
  }
}

export async function runWorkers(fresh: FreshStore, o: WorkersOptions): Promise<ScenarioResult> {
  const dir = mkdtempSync(join(tmpdir(), 'punctual-bench-workers-'));
  try {
    return await withService(fresh, async (service) => {
      // Latency: the workers wait on an empty queue; tasks fall due one after another.
      const latencyLog = join(dir, 'latency.log');
      let workers = await startWorkers(service.url, o, latencyLog);
      const { count, ratePerSec, leadMs } = o.latency;
      const t0 = Date.now() + leadMs;
      await postTasks(
        service.url,
        Array.from({ length: count }, (_, i) => taskBody(t0 + Math.floor((i * 1_000) / ratePerSec), i)),
      );
      note(`  [latency] ${fmtInt(count)} tasks due at ${fmtInt(ratePerSec)}/s over ${o.workers} workers`);
      const latencyRuns = await waitForRuns(
        latencyLog,
        count,
        leadMs + (count / ratePerSec) * 1_000 + o.timeoutMs,
        'latency',
      );
      await stopWorkers(workers);
      const added = distribution(latencyRuns.map((r) => r.startedAt - r.scheduledAt));

      // Throughput: a backlog due now, then the workers start.
      const throughputLog = join(dir, 'throughput.log');
      const backlog = o.throughput.count;
      const due = Date.now();
      await postTasks(
        service.url,
        Array.from({ length: backlog }, (_, i) => taskBody(due, i)),
      );
      note(`  [throughput] ${fmtInt(backlog)} tasks due now; starting ${o.workers} workers`);
      workers = await startWorkers(service.url, o, throughputLog);
      const runs = await waitForRuns(throughputLog, backlog, o.timeoutMs, 'throughput');
      await stopWorkers(workers);
      const starts = runs.map((r) => r.startedAt).sort((a, b) => a - b);
      const at = (share: number) => starts[Math.min(starts.length - 1, Math.floor(starts.length * share))] as number;
      const tasksPerSec = ((backlog * 0.8) / (at(0.9) - at(0.1))) * 1_000;

      const rows = [
        {
          metric: `added latency due → handler start, p50 / p99 / max (${fmtInt(count)} at ${fmtInt(ratePerSec)}/s)`,
          value: `${fmtMs(added.p50)} / ${fmtMs(added.p99)} / ${fmtMs(added.max)}`,
          target: 'all ran',
          pass: latencyRuns.length === count,
        },
        {
          metric: `tasks/s, ${o.workers} workers x ${o.concurrency}, no-op (10%..90% of ${fmtInt(backlog)})`,
          value: fmtInt(Math.round(tasksPerSec)),
          target: 'all ran',
          pass: runs.length === backlog,
        },
      ];
      return {
        scenario: 'workers',
        rows,
        raw: {
          settings: o,
          latency: { ran: latencyRuns.length, addedMs: roundAll(added) },
          throughput: { ran: runs.length, tasksPerSec: round(tasksPerSec, 0) },
        },
      };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
