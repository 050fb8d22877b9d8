/**
 * WorkerQueues on its own: hand-off to waiting workers, parking between polls, give-back, and the
 * demand it asks the dispatcher to claim.
 */
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/core/clock.ts';
import type { Task } from '../../../src/core/task.ts';
import { WorkerQueues } from '../../../src/workers/worker-queues.ts';
import { makeTask } from '../../helpers/task-factory.ts';

function queued(queue: string, overrides: Partial<Task> = {}): Task {
  return makeTask({
    target: { type: 'worker', queue },
    state: 'running',
    attempts: 1,
    leaseOwner: 'node',
    leaseToken: 'token',
    leaseExpiresAt: Date.now() + 35_000,
    ...overrides,
  });
}

function setup() {
  const released: Task[] = [];
  let wakes = 0;
  const queues = new WorkerQueues({
    clock: systemClock,
    lookaheadMs: 2_000,
    wake: () => {
      wakes++;
    },
    release: async (tasks) => {
      released.push(...tasks);
    },
  });
  return { queues, released, wakes: () => wakes };
}

describe('WorkerQueues', () => {
  it('hands a fired task to a waiting worker, and asks for as much as the workers wait for', async () => {
    const { queues, wakes } = setup();
    const claim = queues.claim('mail', { max: 3, waitMs: 5_000 });
    expect(wakes()).toBe(1);
    expect(queues.demand()).toEqual([{ queue: 'mail', limit: 3 }]);
    const task = queued('mail');
    queues.noteClaimed([task]);
    expect(queues.demand()).toEqual([{ queue: 'mail', limit: 2 }]);
    expect(await queues.run(task)).toEqual({ ok: true, handedOff: true });
    expect(await claim).toEqual([task]);
  });

  it('answers with every task fired in the same turn, up to max', async () => {
    const { queues } = setup();
    const claim = queues.claim('mail', { max: 2, waitMs: 5_000 });
    const [a, b, c] = [queued('mail'), queued('mail'), queued('mail')];
    for (const t of [a, b, c]) await queues.run(t as Task);
    expect(await claim).toEqual([a, b]);
    // The third waits on the node for the next poll, which gets it at once.
    expect(await queues.claim('mail', { max: 5, waitMs: 5_000 })).toEqual([c]);
  });

  it('passes the tasks of a worker that hung up to the next one', async () => {
    const { queues } = setup();
    const gone = new AbortController();
    const first = queues.claim('mail', { max: 5, waitMs: 5_000, signal: gone.signal });
    const task = queued('mail');
    await queues.run(task);
    gone.abort(); // before the answer went out
    expect(await first).toEqual([]);
    expect(await queues.claim('mail', { max: 5, waitMs: 0 })).toEqual([task]);
  });

  it('gives a task back when no worker takes it while it can still finish within its lease', async () => {
    const { queues, released } = setup();
    // Started later than 50 ms from now, it could outlive its lease.
    const task = queued('mail', { timeoutMs: 1_000, leaseExpiresAt: Date.now() + 1_050 });
    await queues.run(task);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(released).toEqual([task]);
    expect(await queues.claim('mail', { max: 5, waitMs: 0 })).toEqual([]);
  });

  it('asks for nothing for a queue nobody polls, and answers an empty wait', async () => {
    const { queues } = setup();
    expect(queues.demand()).toEqual([]);
    expect(await queues.claim('idle', { max: 5, waitMs: 20 })).toEqual([]);
  });

  it('on stop, answers waiting workers and releases parked tasks', async () => {
    const { queues, released } = setup();
    const parked = queued('sms');
    await queues.run(parked);
    const waiting = queues.claim('mail', { max: 1, waitMs: 60_000 });
    await queues.stop();
    expect(await waiting).toEqual([]);
    expect(released).toEqual([parked]);
  });
});
