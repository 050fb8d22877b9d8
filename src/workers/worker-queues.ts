/**
 * Remote workers' queues on one node: the long-polls waiting on each queue, and the target that
 * hands a fired task to one of them.
 *
 *   worker ──claim(queue)──▶ waits here ◀── hand-off at the task's millisecond ◀── timer
 *                                 │
 *   dispatcher ◀── demand ────────┘  (claims a queue's tasks only while workers wait on it)
 *
 * A queue's tasks are claimed from the store only while workers poll it here, so a queue nobody
 * polls costs nothing. How many: the room the waiting workers asked for, or, when more, what this
 * node has been handing that queue over the lookahead at its recent pace, so a steady stream is
 * claimed ahead and every task fires into a waiting worker at its millisecond. A task that fires
 * between two polls waits for the next one on this node, until the last moment it could still
 * run within its lease, and is then released for any node to take.
 */

import type { Clock } from '../core/clock.ts';
import { PunctualError } from '../core/errors.ts';
import { queueOf, type Task } from '../core/task.ts';
import type { QueueDemand } from '../store/store.ts';
import type { Target, TargetResult } from '../targets/target.ts';

export interface WorkerQueuesOptions {
  clock: Clock;
  /** How far ahead the dispatcher claims (ms). */
  lookaheadMs: number;
  /** A waiting worker appeared: claim for it now rather than at the next poll. */
  wake: () => void;
  /** Give back leases of tasks no worker took in time (store.taskRelease). */
  release: (tasks: Task[]) => Promise<void>;
}

export interface ClaimRequest {
  max: number;
  waitMs: number;
  /** The worker went away (its HTTP request closed). */
  signal?: AbortSignal;
}

interface Waiter {
  max: number;
  tasks: Task[];
  done: (tasks: Task[]) => void;
  signal?: AbortSignal;
}

interface Parked {
  task: Task;
  timer: NodeJS.Timeout;
}

/** A queue stays served by this node for this long after its last poll (workers re-poll at once). */
const ACTIVE_MS = 3_000;
const PACE_WINDOW_MS = 1_000;

/** Tasks per second a queue's workers took from this node lately. */
interface Pace {
  lastPollAt: number;
  windowStart: number;
  handed: number;
  perSec: number;
}

export class WorkerQueues implements Target {
  private readonly options: WorkerQueuesOptions;
  private readonly waiting = new Map<string, Waiter[]>();
  private readonly parked = new Map<string, Parked[]>();
  /** Tasks claimed for a queue and not yet handed over, by id: they count against its demand. */
  private readonly inbound = new Map<string, Task>();
  private readonly pace = new Map<string, Pace>();
  private closed = false;

  constructor(options: WorkerQueuesOptions) {
    this.options = options;
  }

  /**
   * How many tasks of each queue polled here this node should claim now: the room its waiting
   * workers asked for or, when more, what it hands the queue over a lookahead at the recent pace,
   * less what it already holds for it.
   */
  demand(): QueueDemand[] {
    const now = this.options.clock.now();
    const inboundByQueue = this.countInbound(now);
    const demand: QueueDemand[] = [];
    for (const [queue, pace] of this.pace) {
      if (now - pace.lastPollAt > ACTIVE_MS && !this.waiting.has(queue)) {
        this.pace.delete(queue);
        continue;
      }
      const room = (this.waiting.get(queue) ?? []).reduce((sum, w) => sum + w.max - w.tasks.length, 0);
      const ahead = Math.ceil((this.recentPerSec(pace, now) * this.options.lookaheadMs) / 1_000);
      const held = (inboundByQueue.get(queue) ?? 0) + (this.parked.get(queue)?.length ?? 0);
      const limit = Math.max(room, ahead) - held;
      if (limit > 0) demand.push({ queue, limit });
    }
    return demand;
  }

  /** Tasks claimed and not yet handed over, per queue. */
  private countInbound(now: number): Map<string, number> {
    const counts = new Map<string, number>();
    for (const [id, task] of this.inbound) {
      // A task that never reached the hand-off (canceled, expired, released by the node) has
      // lost its lease by now: stop counting it.
      if ((task.leaseExpiresAt ?? 0) <= now) this.inbound.delete(id);
      else counts.set(queueOf(task) as string, (counts.get(queueOf(task) as string) ?? 0) + 1);
    }
    return counts;
  }

  private recentPerSec(pace: Pace, now: number): number {
    const elapsed = now - pace.windowStart;
    if (elapsed >= PACE_WINDOW_MS) {
      const current = (pace.handed * 1_000) / elapsed;
      pace.perSec = pace.perSec === 0 ? current : 0.5 * pace.perSec + 0.5 * current;
      pace.windowStart = now;
      pace.handed = 0;
    }
    return pace.perSec;
  }

  private paceOf(queue: string): Pace {
    let pace = this.pace.get(queue);
    if (!pace) {
      const now = this.options.clock.now();
      pace = { lastPollAt: now, windowStart: now, handed: 0, perSec: 0 };
      this.pace.set(queue, pace);
    }
    return pace;
  }

  /** The dispatcher claimed these (some may be for queues): count them until they are handed over. */
  noteClaimed(tasks: Task[]): void {
    for (const task of tasks) if (queueOf(task) !== null) this.inbound.set(task.id, task);
  }

  /**
   * A worker's long-poll: tasks waiting on this node come back at once; otherwise the first tasks
   * to fall due within `waitMs`, or none.
   */
  claim(queue: string, { max, waitMs, signal }: ClaimRequest): Promise<Task[]> {
    if (this.closed) {
      throw new PunctualError('PUNCTUAL_SHUTTING_DOWN', 'this node is shutting down; claim from another node');
    }
    this.paceOf(queue).lastPollAt = this.options.clock.now();
    const ready = this.takeParked(queue, max);
    this.paceOf(queue).handed += ready.length;
    if (ready.length > 0 || waitMs <= 0) return Promise.resolve(ready);
    return new Promise((resolve) => {
      const waiter: Waiter = { max, tasks: [], signal, done: () => {} };
      const timer = setTimeout(() => finish(), waitMs);
      const onAbort = () => finish();
      let answered = false;
      const finish = () => {
        if (answered) return;
        answered = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.removeWaiter(queue, waiter);
        resolve(waiter.tasks);
      };
      waiter.done = finish;
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waitersOf(queue).push(waiter);
      // Claim for this worker now, unless tasks claimed ahead for the queue are already on their
      // way (the regular claims keep ahead of a steady stream; a claim per poll would not).
      if (this.inbound.size === 0 || !this.countInbound(this.options.clock.now()).has(queue)) this.options.wake();
    });
  }

  /** The target of tasks for a worker queue: hand the task over; the worker reports its outcome. */
  async run(task: Task): Promise<TargetResult> {
    this.inbound.delete(task.id);
    this.offer(task);
    return { ok: true, handedOff: true };
  }

  /** Answer every waiting worker (with what it has) and turn new claims away. */
  close(): void {
    this.closed = true;
    for (const waiters of [...this.waiting.values()]) for (const w of [...waiters]) w.done(w.tasks);
  }

  /** Close, and release the tasks parked here. */
  async stop(): Promise<void> {
    this.close();
    const parked = [...this.parked.values()].flat();
    this.parked.clear();
    for (const p of parked) clearTimeout(p.timer);
    if (parked.length > 0) await this.options.release(parked.map((p) => p.task));
  }

  private offer(task: Task): void {
    const queue = queueOf(task) ?? task.name;
    const waiter = this.waiting.get(queue)?.find((w) => !w.signal?.aborted && w.tasks.length < w.max);
    if (waiter) {
      waiter.tasks.push(task);
      this.paceOf(queue).handed += 1;
      // Tasks fired in the same timer batch go out in one response.
      if (waiter.tasks.length >= waiter.max) waiter.done(waiter.tasks);
      else if (waiter.tasks.length === 1) setImmediate(() => waiter.done(waiter.tasks));
      return;
    }
    // Started no later than this, the attempt still fits in its lease (as the executor requires).
    const startBy = (task.leaseExpiresAt ?? 0) - task.timeoutMs;
    const parked: Parked = {
      task,
      timer: setTimeout(() => this.giveBack(queue, parked), Math.max(0, startBy - this.options.clock.now())),
    };
    this.parkedOf(queue).push(parked);
  }

  private giveBack(queue: string, parked: Parked): void {
    const list = this.parked.get(queue);
    const at = list?.indexOf(parked) ?? -1;
    if (!list || at < 0) return;
    list.splice(at, 1);
    if (list.length === 0) this.parked.delete(queue);
    void this.options.release([parked.task]).then(() => this.options.wake());
  }

  private takeParked(queue: string, max: number): Task[] {
    const list = this.parked.get(queue);
    if (!list) return [];
    const taken = list.splice(0, max);
    if (list.length === 0) this.parked.delete(queue);
    for (const p of taken) clearTimeout(p.timer);
    return taken.map((p) => p.task);
  }

  private removeWaiter(queue: string, waiter: Waiter): void {
    const list = this.waiting.get(queue);
    if (!list) return;
    const at = list.indexOf(waiter);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) this.waiting.delete(queue);
    // A worker that went away before its answer was sent: its tasks go to the next worker.
    if (waiter.signal?.aborted) for (const task of waiter.tasks.splice(0)) this.offer(task);
  }

  private waitersOf(queue: string): Waiter[] {
    return listIn(this.waiting, queue);
  }

  private parkedOf(queue: string): Parked[] {
    return listIn(this.parked, queue);
  }
}

function listIn<T>(lists: Map<string, T[]>, key: string): T[] {
  const existing = lists.get(key);
  if (existing) return existing;
  const list: T[] = [];
  lists.set(key, list);
  return list;
}
