/**
 * The dispatcher: claims due tasks ahead of time and fires each at its exact millisecond.
 *
 * Modes:
 *   stopped ──start()──▶ running ──stop()──▶ draining ──▶ stopped
 *
 * While running, every tick claims (one store call) the tasks due before now + lookahead, up to
 * the room left under `maxHeld`, and pushes them into the timer queue; the timer hands each to
 * the executor when its time comes. A tick that filled its whole claim runs again at once
 * (catch-up after downtime goes at full speed, oldest first); otherwise the next tick comes after
 * `pollIntervalMs`. Because the lookahead is longer than the poll interval, a task is normally
 * claimed at least (lookahead − poll interval) before its time, so the store's latency never
 * shows up as lateness. Tasks created on this node and due within the lookahead skip the claim
 * entirely (create-and-claim, see Punctual.createTasks).
 *
 * Stopping: no more claims; tasks still waiting in the timer or the ready queue are released at
 * once (back to scheduled, attempt refunded) so another node can take them; running ones get
 * `graceMs` to finish, then are aborted and released too.
 */
import { EventEmitter, once } from 'node:events';
import { retryPause } from '../core/backoff.ts';
import type { Clock } from '../core/clock.ts';
import type { Task } from '../core/task.ts';
import type { LeaseRef, QueueDemand, TaskOutcome, TaskStore } from '../store/store.ts';
import type { Target } from '../targets/target.ts';
import { Completer } from './completer.ts';
import { Executor } from './executor.ts';
import type { Logger } from './logger.ts';
import { StoreClock } from './store-clock.ts';
import { TimerQueue } from './timer-queue.ts';

/** Claim tasks due up to this far ahead. */
export const DEFAULT_LOOKAHEAD_MS = 2_000;
/** How often a node re-reads a server store's clock (clocks drift and get stepped). */
const CLOCK_SYNC_MS = 10_000;
/** Claims at least this many tasks when there is room (and only claims this large measure the store's cost). */
const MIN_CLAIM = 20;
const FIRST_CLAIM = 100;

export interface DispatcherOptions {
  store: TaskStore;
  clock: Clock;
  logger: Logger;
  /** Identifies this node's leases. */
  owner: string;
  resolveTarget: (task: Task) => Target;
  /** Tasks run at once (default 100). */
  concurrency?: number;
  /** Claim tasks due up to this far ahead (default 2,000 ms). */
  lookaheadMs?: number;
  /** Time between claims when there is no backlog (default 500 ms). */
  pollIntervalMs?: number;
  /** Most tasks held at once: in the timer, waiting for a slot, or running (default 5,000). */
  maxHeld?: number;
  /** Most tasks one claim takes (default: the store's `claimBatchSize`, 3,000 on SQLite, 1,000 elsewhere). */
  claimBatchSize?: number;
  /** Added to a task's timeout to make its lease (default 5,000 ms). */
  leaseGraceMs?: number;
  /** Completion group-commit window (default 2 ms). */
  completionDelayMs?: number;
  /** Worker queues to claim from too, each up to what its workers here will take (workers/worker-queues.ts). */
  queueDemand?: () => QueueDemand[];
}

export interface DispatcherEvents {
  claimed: [Task[]];
  started: [{ task: Task; latenessMs: number }];
  completed: [{ outcome: TaskOutcome; task: Task }];
  /** A batch of outcomes reached the store. */
  flushed: [{ outcomes: TaskOutcome[]; stale: number }];
  ended: [Task[]];
  released: [LeaseRef[]];
  /** A claim failed (store down); the dispatcher retries with backoff. */
  claimFailed: [Error];
}

export class Dispatcher extends EventEmitter<DispatcherEvents> {
  readonly owner: string;
  readonly lookaheadMs: number;
  readonly leaseGraceMs: number;
  private readonly store: TaskStore;
  /** This node's clock aligned to the store's: timers, outcomes and lateness all use it. */
  readonly clock: Clock;
  private readonly storeClock: StoreClock | null;
  private readonly logger: Logger;
  private readonly pollIntervalMs: number;
  private readonly maxHeld: number;
  private readonly claimBatchSize: number;
  private readonly queueDemand: () => QueueDemand[];
  private readonly timers: TimerQueue<Task>;
  private readonly executor: Executor;
  private readonly completer: Completer;
  private running = false;
  private tickTimer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private wakeRequested = false;
  private unsubscribe: (() => void) | undefined;
  private clockSyncTimer: NodeJS.Timeout | null = null;
  private claimFailures = 0;

  constructor(options: DispatcherOptions) {
    super();
    this.owner = options.owner;
    this.store = options.store;
    this.storeClock = options.store.capabilities.serverClock ? new StoreClock(options.clock) : null;
    this.clock = this.storeClock ?? options.clock;
    this.logger = options.logger;
    this.lookaheadMs = options.lookaheadMs ?? DEFAULT_LOOKAHEAD_MS;
    this.pollIntervalMs = options.pollIntervalMs ?? 500;
    this.maxHeld = options.maxHeld ?? 5_000;
    this.claimBatchSize = options.claimBatchSize ?? options.store.capabilities.claimBatchSize;
    this.leaseGraceMs = options.leaseGraceMs ?? 5_000;
    this.queueDemand = options.queueDemand ?? (() => []);
    this.completer = new Completer({
      store: options.store,
      logger: options.logger,
      flushDelayMs: options.completionDelayMs,
    });
    this.completer.on('flushed', ({ outcomes, stale }) => this.emit('flushed', { outcomes, stale }));
    this.executor = new Executor({
      clock: this.clock,
      logger: options.logger,
      concurrency: options.concurrency ?? 100,
      resolveTarget: options.resolveTarget,
      onStart: (task, latenessMs) => this.emit('started', { task, latenessMs }),
      onLeaseTooShort: (task) => this.releaseSoon(task),
      onOutcome: (outcome, task) => {
        this.completer.add(outcome);
        this.emit('completed', { outcome, task });
        this.requestTickIfRoom();
      },
    });
    this.timers = new TimerQueue<Task>(this.clock, (tasks) => this.executor.submit(tasks));
  }

  /** Tasks this node holds: waiting in the timer, waiting for a slot, or running. */
  get held(): number {
    return this.timers.size + this.executor.load;
  }

  /** How many more tasks this node may take on now (for create-and-claim). */
  get room(): number {
    return this.running ? Math.max(0, this.maxHeld - this.held) : 0;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Completions rejected because the lease had been lost. */
  get staleCompletions(): number {
    return this.completer.staleCount;
  }

  /** Start claiming; with a server clock, align to it first (and every CLOCK_SYNC_MS after). */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.storeClock) {
      const storeClock = this.storeClock;
      const sync = (): Promise<void> =>
        storeClock
          .sync(() => this.store.timeNow())
          .catch((error: unknown) => {
            this.logger.warn({ err: error }, 'reading the store clock failed; keeping the last offset');
          });
      await sync();
      this.logger.info({ offsetMs: storeClock.offsetMs }, 'aligned to the store clock');
      this.clockSyncTimer = setInterval(() => void sync(), CLOCK_SYNC_MS);
      this.clockSyncTimer.unref();
    }
    // Another node made tasks schedulable: claim now if any falls within our lookahead.
    this.unsubscribe = this.store.onTasksAvailable?.((earliestDueAt) => {
      if (earliestDueAt < this.clock.now() + this.lookaheadMs) this.wake();
    });
    this.scheduleTick(0);
  }

  /** Take tasks this node claimed elsewhere (create-and-claim) into the timer. */
  accept(tasks: Task[]): void {
    for (const task of tasks) this.timers.push(task.id, task.scheduledAt, task);
    if (tasks.length > 0) this.emit('claimed', tasks);
  }

  /** Claim now instead of at the next tick (a task became due sooner: run now, retry, edit). */
  wake(): void {
    if (!this.running) return;
    if (this.ticking) this.wakeRequested = true;
    else this.scheduleTick(0);
  }

  /**
   * Take a task that this node holds but has not started out of its queues, so that the caller
   * can cancel or edit it under its lease. Returns the lease, or undefined if not held unstarted.
   */
  takeUnstarted(id: string): Task | undefined {
    return this.timers.remove(id) ?? this.executor.removeWaiting(id);
  }

  /** Put back a task taken by takeUnstarted when the change did not happen. */
  putBack(task: Task): void {
    this.timers.push(task.id, task.scheduledAt, task);
  }

  async stop(options: { graceMs?: number } = {}): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.unsubscribe?.();
    if (this.clockSyncTimer) clearInterval(this.clockSyncTimer);
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = null;
    await this.ticking;
    this.timers.stop();
    await this.release([...this.timers.drain(), ...this.executor.takeWaiting()]);
    const graceMs = options.graceMs ?? 10_000;
    const deadline = this.clock.now() + graceMs;
    while (this.executor.runningCount > 0 && this.clock.now() < deadline) {
      await once(this, 'completed', { signal: AbortSignal.timeout(deadline - this.clock.now()) }).catch(() => {});
    }
    if (this.executor.runningCount > 0) {
      this.logger.warn({ running: this.executor.runningCount }, 'grace period over: aborting running tasks');
      this.executor.abortAll(new Error('the node is shutting down'));
    }
    await this.completer.drain();
  }

  /** Give back leases this node holds but will not start (a worker queue's task nobody took). */
  releaseLeases(tasks: Task[]): Promise<void> {
    return this.release(tasks);
  }

  private async release(tasks: Task[]): Promise<void> {
    if (tasks.length === 0) return;
    const leases = tasks.map((t) => ({ id: t.id, leaseToken: t.leaseToken as string }));
    try {
      await this.store.taskRelease({ leases });
      this.emit('released', leases);
    } catch (error) {
      // The leases will expire and another node will take the tasks: late, but not lost.
      this.logger.error({ err: error, count: leases.length }, 'releasing leases failed; they will expire instead');
    }
  }

  /** Release tasks one by one as the executor gives them up, in one store call per event-loop turn. */
  private toRelease: Task[] = [];
  private releaseSoon(task: Task): void {
    this.toRelease.push(task);
    if (this.toRelease.length > 1) return;
    setImmediate(() => {
      const tasks = this.toRelease;
      this.toRelease = [];
      this.logger.warn({ count: tasks.length }, 'tasks waited too long for a free slot; releasing their leases');
      void this.release(tasks).then(() => this.wake());
    });
  }

  /**
   * How many tasks to claim now: no more than the room under maxHeld, and no more than the
   * executor can start before their leases' grace runs out at its recent pace (back-pressure:
   * a slow target must not make this node hoard tasks that other nodes could run).
   */
  private claimLimit(): number {
    const startable = this.executor.startableWithin(this.leaseGraceMs / 2) - this.executor.load;
    // A claim must also come back well within the grace: the leases it takes run from its start.
    // Until a claim has shown what the store costs, claims stay small.
    const timely =
      this.claimMsPerTask === 0
        ? FIRST_CLAIM
        : Math.max(MIN_CLAIM, Math.floor(this.leaseGraceMs / 4 / this.claimMsPerTask));
    return Math.max(0, Math.min(this.claimBatchSize, this.maxHeld - this.held, startable, timely));
  }

  /** The store's recent claim cost per task (ms), from claims large enough to say. */
  private claimMsPerTask = 0;
  private noteClaimCost(elapsedMs: number, rows: number): void {
    if (rows < MIN_CLAIM) return;
    const sample = elapsedMs / rows;
    this.claimMsPerTask = this.claimMsPerTask === 0 ? sample : 0.7 * this.claimMsPerTask + 0.3 * sample;
  }

  private scheduleTick(delayMs: number): void {
    if (!this.running) return;
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = setTimeout(() => {
      this.tickTimer = null;
      this.ticking = this.tick().finally(() => {
        this.ticking = null;
      });
    }, delayMs);
  }

  /** After a completion frees room, claim again soon if the last claim suggested a backlog. */
  private backlog = false;
  private requestTickIfRoom(): void {
    if (!this.backlog || this.ticking) return;
    // Claim in large batches: one store call per quarter batch of room, not one per completion.
    if (this.held === 0 || this.claimLimit() >= this.claimBatchSize / 4) this.wake();
  }

  private async tick(): Promise<void> {
    let claimedAll = false;
    const limit = this.claimLimit();
    const queues = limit > 0 || this.held < this.maxHeld ? this.queueDemand() : [];
    if (limit > 0 || queues.length > 0) {
      try {
        const started = performance.now();
        const { claimed, ended } = await this.store.taskClaimDue({
          lease: { owner: this.owner, graceMs: this.leaseGraceMs },
          lookaheadMs: this.lookaheadMs,
          limit,
          queues,
        });
        this.claimFailures = 0;
        this.noteClaimCost(performance.now() - started, claimed.length + ended.length);
        if (ended.length > 0) this.emit('ended', ended);
        if (claimed.length > 0) this.accept(claimed);
        // A backlog of this node's own tasks: claims for queues are sized by their workers instead.
        const own = (tasks: Task[]) => tasks.filter((t) => t.target?.type !== 'worker').length;
        claimedAll = limit > 0 && own(claimed) + own(ended) >= limit;
      } catch (error) {
        this.claimFailures += 1;
        this.logger.error({ err: error }, 'claiming due tasks failed; will retry');
        this.emit('claimFailed', error as Error);
      }
    }
    this.backlog = claimedAll || limit <= 0;
    if (!this.running) return;
    if (this.wakeRequested || (claimedAll && this.held < this.maxHeld)) {
      this.wakeRequested = false;
      this.scheduleTick(0);
    } else if (this.claimFailures > 0) {
      this.scheduleTick(retryPause(this.claimFailures, this.pollIntervalMs, 5_000));
    } else {
      this.scheduleTick(this.pollIntervalMs);
    }
  }
}
