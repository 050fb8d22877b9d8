/**
 * The dispatcher in process, on a real SQLite store, with the real clock. Tests wait on the
 * dispatcher's own events ('started', 'flushed', 'released'), never on sleeps.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { uuidv7 } from '../../../src/core/ids.ts';
import { DEFAULT_BACKOFF, type NewTask, type Task } from '../../../src/core/task.ts';
import { createPunctual, type Punctual, type PunctualOptions } from '../../../src/punctual.ts';
import type { TaskOutcome, TaskStore } from '../../../src/store/store.ts';
import { PermanentError } from '../../../src/targets/target.ts';
import { tempSqliteStore } from '../../helpers/temp-sqlite.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options: Partial<PunctualOptions> = {}): Promise<{ p: Punctual; store: TaskStore }> {
  const { store, cleanup } = await tempSqliteStore();
  const p = createPunctual({ store, ...options });
  cleanups.push(cleanup, () => p.stop({ graceMs: 1_000 }));
  return { p, store: options.store ?? store };
}

function newTask(overrides: Partial<NewTask> = {}): NewTask {
  return {
    id: uuidv7(),
    namespace: 'default',
    name: 'job',
    description: null,
    payload: null,
    target: null,
    scheduledAt: Date.now(),
    deadlineAt: null,
    maxAttempts: 3,
    timeoutMs: 5_000,
    backoff: { ...DEFAULT_BACKOFF, base_ms: 5, jitter: false },
    idempotencyKey: null,
    requestHash: null,
    ...overrides,
  };
}

/** Resolves once `count` outcomes have been written to the store. */
function flushedOutcomes(p: Punctual, count: number): Promise<TaskOutcome[]> {
  const seen: TaskOutcome[] = [];
  return new Promise((resolve) => {
    const onFlush = ({ outcomes }: { outcomes: TaskOutcome[] }): void => {
      seen.push(...outcomes);
      if (seen.length >= count) {
        p.dispatcher.off('flushed', onFlush);
        resolve(seen);
      }
    };
    p.dispatcher.on('flushed', onFlush);
  });
}

describe('Dispatcher', () => {
  it('fires each task at its time, never before', async () => {
    const { p } = await setup();
    const started: Array<{ at: number; scheduledAt: number }> = [];
    p.handle('job', (task) => {
      started.push({ at: Date.now(), scheduledAt: task.scheduledAt });
    });
    await p.start();
    const base = Date.now() + 100;
    const done = flushedOutcomes(p, 20);
    await p.createTasks(Array.from({ length: 20 }, (_, i) => newTask({ scheduledAt: base + i * 10 })));
    await done;
    expect(started).toHaveLength(20);
    for (const s of started) expect(s.at).toBeGreaterThanOrEqual(s.scheduledAt);
  });

  it('claims a task due within the lookahead as it is created (create-and-claim)', async () => {
    const { p } = await setup({ lookaheadMs: 2_000 });
    p.handle('job', () => {});
    await p.start();
    const [soon, later] = await p.createTasks([
      newTask({ scheduledAt: Date.now() + 500 }),
      newTask({ scheduledAt: Date.now() + 60_000 }),
    ]);
    expect(soon).toMatchObject({ status: 'created', claimed: true, task: { state: 'running', attempts: 1 } });
    expect(later).toMatchObject({ status: 'created', claimed: false, task: { state: 'scheduled', attempts: 0 } });
  });

  it('claims tasks created elsewhere by polling ahead of their time', async () => {
    const { p, store } = await setup({ pollIntervalMs: 50, lookaheadMs: 300 });
    const lateness: number[] = [];
    p.handle('job', () => {});
    p.dispatcher.on('started', ({ latenessMs }) => lateness.push(latenessMs));
    await p.start();
    const done = flushedOutcomes(p, 5);
    // Written straight to the store, as another node or process would: no create-and-claim.
    await store.taskCreate({
      tasks: Array.from({ length: 5 }, (_, i) => newTask({ scheduledAt: Date.now() + 400 + i })),
      now: Date.now(),
    });
    const outcomes = await done;
    expect(outcomes.every((o) => o.kind === 'succeeded')).toBe(true);
    expect(lateness.every((ms) => ms >= 0)).toBe(true);
  });

  it('catches up overdue tasks oldest first, bounded by concurrency', async () => {
    const { p, store } = await setup({ concurrency: 1 });
    const order: number[] = [];
    let running = 0;
    let maxRunning = 0;
    p.handle('job', async (task) => {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      order.push(task.scheduledAt);
      await new Promise((resolve) => setImmediate(resolve));
      running -= 1;
    });
    const past = Date.now() - 3_600_000;
    const times = Array.from({ length: 200 }, (_, i) => past + ((i * 37) % 200) * 1_000);
    await store.taskCreate({ tasks: times.map((t) => newTask({ scheduledAt: t })), now: Date.now() });
    const done = flushedOutcomes(p, 200);
    await p.start();
    await done;
    expect(order).toEqual([...times].sort((a, b) => a - b));
    expect(maxRunning).toBe(1);
  });

  it('retries with backoff, then fails for good when attempts run out', async () => {
    const { p, store } = await setup();
    const attempts: number[] = [];
    p.handle('job', (_task, ctx) => {
      attempts.push(ctx.attempt);
      throw new Error(`boom ${ctx.attempt}`);
    });
    await p.start();
    const done = flushedOutcomes(p, 3);
    const [created] = await p.createTasks([newTask({ maxAttempts: 3 })]);
    const outcomes = await done;
    expect(outcomes.map((o) => o.kind)).toEqual(['retry', 'retry', 'failed']);
    expect(attempts).toEqual([1, 2, 3]);
    const task = await store.taskGet({ id: created?.task.id as string });
    expect(task).toMatchObject({ state: 'failed', attempts: 3, lastError: 'boom 3 (attempt 3 of 3)' });
  });

  it('fails at once on a permanent error', async () => {
    const { p, store } = await setup();
    p.handle('job', () => {
      throw new PermanentError('bad request');
    });
    await p.start();
    const done = flushedOutcomes(p, 1);
    const [created] = await p.createTasks([newTask()]);
    await done;
    expect(await store.taskGet({ id: created?.task.id as string })).toMatchObject({ state: 'failed', attempts: 1 });
  });

  it('times a handler out and retries it', async () => {
    const { p } = await setup();
    p.handle('job', (_task, ctx) => (ctx.attempt === 1 ? new Promise(() => {}) : undefined));
    await p.start();
    const done = flushedOutcomes(p, 2);
    await p.createTasks([newTask({ timeoutMs: 50 })]);
    const [first, second] = await done;
    expect(first).toMatchObject({ kind: 'retry', error: 'timeout after 50 ms' });
    expect(second?.kind).toBe('succeeded');
  });

  it('expires a task whose deadline passed before it could start', async () => {
    const { p, store } = await setup();
    p.handle('job', () => {
      throw new Error('must not run');
    });
    const now = Date.now();
    const [created] = await store.taskCreate({
      tasks: [newTask({ scheduledAt: now - 10_000, deadlineAt: now - 5_000 })],
      now,
    });
    const ended = once(p.dispatcher, 'ended');
    await p.start();
    const [tasks] = (await ended) as [Task[]];
    expect(tasks.map((t) => t.id)).toEqual([created?.task.id]);
    expect(await store.taskGet({ id: created?.task.id as string })).toMatchObject({ state: 'expired' });
  });

  it('cancels a task it holds in its timer before the task starts', async () => {
    const { p, store } = await setup();
    let ran = false;
    p.handle('job', () => {
      ran = true;
    });
    await p.start();
    const [created] = await p.createTasks([newTask({ scheduledAt: Date.now() + 300 })]);
    expect(created).toMatchObject({ claimed: true });
    const result = await p.cancelTask(created?.task.id as string);
    expect(result).toMatchObject({ status: 'ok', task: { state: 'canceled' } });
    expect(p.dispatcher.held).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(ran).toBe(false);
    expect(await store.taskGet({ id: created?.task.id as string })).toMatchObject({ state: 'canceled' });
  });

  it('releases the tasks it holds when it stops, refunding their attempt', async () => {
    const { p, store } = await setup();
    p.handle('job', () => {});
    await p.start();
    const results = await p.createTasks(Array.from({ length: 10 }, () => newTask({ scheduledAt: Date.now() + 1_500 })));
    expect(results.every((r) => r.status === 'created' && r.claimed)).toBe(true);
    const released = once(p.dispatcher, 'released');
    await p.stop();
    const [leases] = (await released) as [unknown[]];
    expect(leases).toHaveLength(10);
    expect(await store.taskCountByState()).toMatchObject({ scheduled: 10, running: 0 });
    const task = await store.taskGet({ id: results[0]?.task.id as string });
    expect(task).toMatchObject({ state: 'scheduled', attempts: 0, leaseOwner: null });
  });

  it('lets running tasks finish within the grace period when it stops', async () => {
    const { p, store } = await setup();
    let finish: () => void = () => {};
    const started = new Promise<void>((resolve) => {
      p.handle('job', () => {
        resolve();
        return new Promise<void>((r) => {
          finish = r;
        });
      });
    });
    await p.start();
    const [created] = await p.createTasks([newTask()]);
    await started;
    const stopping = p.stop({ graceMs: 5_000 });
    setTimeout(() => finish(), 50);
    await stopping;
    expect(await store.taskGet({ id: created?.task.id as string })).toMatchObject({ state: 'succeeded' });
  });

  it('never starts a task whose lease could end before its timeout; releases it instead', async () => {
    // One slot, a slow first task: the second waits longer than its lease's grace allows.
    const { p, store } = await setup({ concurrency: 1, leaseGraceMs: 50 });
    const ran: string[] = [];
    p.handle('job', async (task) => {
      ran.push(task.id);
      if (ran.length === 1) await new Promise((resolve) => setTimeout(resolve, 300));
    });
    await p.start();
    const released = once(p.dispatcher, 'released');
    const [slow, starved] = await p.createTasks([newTask({ timeoutMs: 1_000 }), newTask({ timeoutMs: 1_000 })]);
    const [leases] = (await released) as [Array<{ id: string }>];
    expect(leases.map((l) => l.id)).toEqual([starved?.task.id]);
    expect(ran).toEqual([slow?.task.id]);
    // Released back to scheduled, it is claimed again with a fresh lease and runs once.
    while ((await store.taskCountByState()).succeeded < 2) {
      await once(p.dispatcher, 'flushed', { signal: AbortSignal.timeout(250) }).catch(() => {});
    }
    expect(ran.filter((id) => id === starved?.task.id)).toHaveLength(1);
    expect(await store.taskCountByState()).toMatchObject({ succeeded: 2 });
  });

  it('keeps outcomes when the store fails to write them, and writes them once it is back', async () => {
    const { store, cleanup } = await tempSqliteStore();
    cleanups.push(cleanup);
    let failuresLeft = 3;
    // The real store, with its completion writes failing three times (a store outage).
    const flaky: TaskStore = Object.create(store, {
      taskComplete: {
        value: (params: Parameters<TaskStore['taskComplete']>[0]) => {
          if (failuresLeft-- > 0) return Promise.reject(new Error('database is unavailable'));
          return store.taskComplete(params);
        },
      },
    });
    const p = createPunctual({ store: flaky });
    cleanups.push(() => p.stop({ graceMs: 1_000 }));
    p.handle('job', () => {});
    await p.start();
    const done = flushedOutcomes(p, 5);
    await p.createTasks(Array.from({ length: 5 }, () => newTask()));
    await done;
    expect(failuresLeft).toBeLessThan(0);
    expect(await store.taskCountByState()).toMatchObject({ succeeded: 5 });
  });

  it('backs off between write attempts while draining at shutdown, instead of hammering a down store', async () => {
    const { store, cleanup } = await tempSqliteStore();
    cleanups.push(cleanup);
    let down = true;
    let writes = 0;
    const flaky: TaskStore = Object.create(store, {
      taskComplete: {
        value: (params: Parameters<TaskStore['taskComplete']>[0]) => {
          writes += 1;
          return down ? Promise.reject(new Error('database is unavailable')) : store.taskComplete(params);
        },
      },
    });
    const p = createPunctual({ store: flaky });
    p.handle('job', () => {});
    await p.start();
    const ran = once(p.dispatcher, 'completed');
    await p.createTasks([newTask()]);
    await ran;
    setTimeout(() => {
      down = false;
    }, 300);
    await p.stop({ graceMs: 1_000 });
    expect(await store.taskCountByState()).toMatchObject({ succeeded: 1 });
    expect(writes).toBeLessThan(20); // a retry loop without backoff makes thousands in 300 ms
  });

  it('claims no more than a slow store can claim well within the lease grace', async () => {
    const { store, cleanup } = await tempSqliteStore();
    cleanups.push(cleanup);
    // The real store, its claims slowed to 2 ms per task (a slow remote store).
    const limits: number[] = [];
    const slow: TaskStore = Object.create(store, {
      taskClaimDue: {
        value: async (params: Parameters<TaskStore['taskClaimDue']>[0]) => {
          limits.push(params.limit);
          const result = await store.taskClaimDue(params);
          await new Promise((resolve) => setTimeout(resolve, 2 * (result.claimed.length + result.ended.length)));
          return result;
        },
      },
    });
    // Grace 400 ms: a claim should take at most 100 ms, so at 2 ms a task, about 50 tasks.
    const p = createPunctual({ store: slow, leaseGraceMs: 400, concurrency: 1_000 });
    cleanups.push(() => p.stop({ graceMs: 1_000 }));
    p.handle('job', () => {});
    await store.taskCreate({ tasks: Array.from({ length: 600 }, () => newTask()) });
    const done = flushedOutcomes(p, 600);
    await p.start();
    await done;
    expect(limits[0]).toBe(100); // until the store's cost is known
    expect(Math.max(...limits.slice(2))).toBeLessThanOrEqual(60);
    expect(await store.taskCountByState()).toMatchObject({ succeeded: 600 });
  });
});
