/**
 * Worker: runs tasks from a Punctual worker queue in this process.
 *
 *   const worker = new Worker({
 *     url: 'http://127.0.0.1:8080',
 *     queue: 'send-email',
 *     concurrency: 10,
 *     handler: async (task, { signal }) => { await sendEmail(task.payload, { signal }); },
 *   });
 *   worker.start();
 *   process.on('SIGTERM', () => worker.stop());
 *
 * - Long-polls the queue for as many tasks as it has free slots; a task reaches the handler the
 *   moment it falls due.
 * - A handler that returns completes the task; one that throws fails the attempt (retried by the
 *   task's backoff while attempts are left; throw a PermanentError to fail it at once).
 * - Heartbeats keep the lease of a long task, at a third of the time left on it. If the lease is
 *   lost anyway (the task was taken over), the handler's signal aborts and no outcome is sent.
 * - Network errors and 503s are retried with capped exponential backoff; the worker never exits
 *   on its own. Outcomes that cannot be delivered are left to the lease: the task runs again.
 * - stop() claims no more, waits up to `graceMs` for running handlers, then aborts them (their
 *   attempts are reported failed, to be retried), and resolves once every outcome is delivered.
 */
import { PunctualClient } from './client.ts';
import { LeaseLostError, PunctualApiError } from './errors.ts';
import type { ClaimedTask } from './types.ts';

export interface WorkerContext {
  /** Aborts when the lease is lost or the worker stops hard. */
  signal: AbortSignal;
  /** 1 for the first attempt. */
  attempt: number;
}

export type WorkerHandler = (task: ClaimedTask, ctx: WorkerContext) => unknown | Promise<unknown>;

export interface WorkerOptions {
  url: string;
  apiKey?: string;
  queue: string;
  handler: WorkerHandler;
  /** Tasks run at once (default 10). */
  concurrency?: number;
  /** Long-poll length (default 20,000 ms). */
  waitMs?: number;
  /** Told of every error the worker recovers from (network, 5xx, a report that failed). */
  onError?: (error: unknown) => void;
}

/** Throw from a handler to fail the task without retries. */
export class PermanentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentError';
  }
}

const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 5_000;
const REPORT_TRIES = 5;

export class Worker {
  private readonly client: PunctualClient;
  private readonly options: Required<Omit<WorkerOptions, 'apiKey' | 'onError'>> & Pick<WorkerOptions, 'onError'>;
  private readonly running = new Map<string, AbortController>();
  /** Outcomes on their way to the service. */
  private readonly reporting = new Set<Promise<void>>();
  private claimAbort: AbortController | null = null;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private slotFreed: (() => void) | null = null;

  constructor(options: WorkerOptions) {
    this.options = { concurrency: 10, waitMs: 20_000, ...options };
    if (!Number.isInteger(this.options.concurrency) || this.options.concurrency < 1) {
      throw new RangeError('concurrency must be a positive integer');
    }
    this.client = new PunctualClient({ url: options.url, apiKey: options.apiKey });
  }

  /** Tasks running now. */
  get active(): number {
    return this.running.size;
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.claimLoop();
  }

  /** Claims no more; waits up to `graceMs` (default 10,000) for running tasks, then aborts them. */
  async stop(options: { graceMs?: number } = {}): Promise<void> {
    this.stopping = true;
    this.claimAbort?.abort();
    this.slotFreed?.();
    await this.loop;
    this.loop = null;
    const deadline = Date.now() + (options.graceMs ?? 10_000);
    while (this.running.size > 0 && Date.now() < deadline) await sleep(20);
    for (const controller of this.running.values()) controller.abort(new Error('the worker is stopping'));
    while (this.running.size > 0) await sleep(20);
    await Promise.all(this.reporting);
  }

  private async claimLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      const free = this.options.concurrency - this.running.size;
      // Busy: refill in batches (a quarter of the slots) rather than one claim per finished task.
      const refillAt = this.running.size === 0 ? 1 : Math.ceil(this.options.concurrency / 4);
      if (free < refillAt) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        continue;
      }
      this.claimAbort = new AbortController();
      try {
        const tasks = await this.client.claim(this.options.queue, {
          max: free,
          waitMs: this.options.waitMs,
          signal: this.claimAbort.signal,
        });
        failures = 0;
        for (const task of tasks) void this.runTask(task);
      } catch (error) {
        if (this.stopping) break;
        this.options.onError?.(error);
        failures++;
        await sleep(backoff(failures));
      }
    }
  }

  private async runTask(task: ClaimedTask): Promise<void> {
    const controller = new AbortController();
    this.running.set(task.id, controller);
    const heartbeats = this.keepLease(task, controller);
    let failure: { error: string; retryable: boolean } | null = null;
    try {
      await this.options.handler(task, { signal: controller.signal, attempt: task.attempts });
    } catch (error) {
      failure = { error: errorText(error), retryable: !isPermanent(error) };
    } finally {
      heartbeats.stop();
    }
    // The slot is free once the handler is done: the outcome is delivered in the background, so a
    // slow report never holds back the next task.
    this.running.delete(task.id);
    this.slotFreed?.();
    this.slotFreed = null;
    // A lost lease: the task belongs to someone else now; this result must not count.
    if (heartbeats.lost) return;
    const reported = this.report(() =>
      failure ? this.client.fail(task.id, task.lease_token, failure) : this.client.complete(task.id, task.lease_token),
    );
    this.reporting.add(reported);
    await reported;
    this.reporting.delete(reported);
  }

  /** Heartbeats at a third of the lease left; on a lost lease, aborts the handler. */
  private keepLease(task: ClaimedTask, controller: AbortController) {
    const state = { lost: false, stop: () => {} };
    let expiresAt = task.lease ? Date.parse(task.lease.expires_at) : Date.now() + task.timeout_ms;
    let timer: ReturnType<typeof setTimeout>;
    const schedule = () => {
      timer = setTimeout(beat, Math.max(250, (expiresAt - Date.now()) / 3));
    };
    const beat = async () => {
      try {
        expiresAt = (await this.client.heartbeat(task.id, task.lease_token)).getTime();
      } catch (error) {
        if (error instanceof LeaseLostError || (error instanceof PunctualApiError && error.status === 404)) {
          state.lost = true;
          controller.abort(new Error('the lease was lost: the task was taken over'));
          return;
        }
        this.options.onError?.(error);
      }
      if (!controller.signal.aborted) schedule();
    };
    schedule();
    state.stop = () => clearTimeout(timer);
    return state;
  }

  /** Delivers an outcome, retrying network errors and 5xx; a 4xx (lease lost) ends it. */
  private async report(send: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await send();
        return;
      } catch (error) {
        this.options.onError?.(error);
        const clientError = error instanceof PunctualApiError && error.status < 500;
        if (clientError || attempt >= REPORT_TRIES) return; // the lease will expire: the task runs again
        await sleep(backoff(attempt));
      }
    }
  }
}

/** Capped exponential backoff with full jitter. */
function backoff(failures: number): number {
  return Math.random() * Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(failures, 10));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isPermanent(error: unknown): boolean {
  return error instanceof Error && error.name === 'PermanentError';
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return typeof error === 'string' ? error : String(error);
}
