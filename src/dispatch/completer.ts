/**
 * Group commit for outcomes. Executors hand in outcomes one at a time; the completer buffers
 * them for at most `flushDelayMs` (or until `maxBatch` are waiting) and writes each buffer in ONE
 * store transaction, fenced by lease tokens. One write per batch instead of one per task is what
 * lets a single SQLite writer keep up with thousands of completions a second.
 *
 * Outcomes are never dropped: when the store fails, the batch goes back to the front of the
 * buffer and is retried with a capped backoff. A node that dies with outcomes buffered loses
 * only those writes; the leases then expire and the tasks run again (at-least-once).
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { retryPause } from '../core/backoff.ts';
import type { TaskCompleteResult, TaskOutcome, TaskStore } from '../store/store.ts';
import type { Logger } from './logger.ts';

export interface CompleterOptions {
  store: TaskStore;
  logger: Logger;
  flushDelayMs?: number;
  maxBatch?: number;
}

export interface CompleterEvents {
  /** A batch was written; `stale` counts outcomes rejected by fencing (the lease was lost). */
  flushed: [{ outcomes: TaskOutcome[]; results: TaskCompleteResult[]; stale: number }];
}

export class Completer extends EventEmitter<CompleterEvents> {
  private readonly store: TaskStore;
  private readonly logger: Logger;
  private readonly flushDelayMs: number;
  private readonly maxBatch: number;
  private buffer: TaskOutcome[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private failures = 0;
  staleCount = 0;

  constructor(options: CompleterOptions) {
    super();
    this.store = options.store;
    this.logger = options.logger;
    this.flushDelayMs = options.flushDelayMs ?? 2;
    this.maxBatch = options.maxBatch ?? 1000;
  }

  get pending(): number {
    return this.buffer.length;
  }

  add(outcome: TaskOutcome): void {
    this.buffer.push(outcome);
    if (this.buffer.length >= this.maxBatch) this.schedule(0);
    else this.schedule(this.flushDelayMs);
  }

  /** Write everything buffered; resolves when the buffer is empty (used at shutdown). */
  async drain(): Promise<void> {
    while (this.buffer.length > 0 || this.flushing) {
      if (this.flushing) await this.flushing;
      else {
        // After a failed write, wait as the scheduled retry would instead of hammering the store.
        if (this.failures > 0) await sleep(this.retryDelay());
        await this.flush();
      }
    }
  }

  private schedule(delayMs: number): void {
    if (this.flushing) return; // the running flush re-schedules when it ends
    if (this.timer && delayMs > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, delayMs);
  }

  private flush(): Promise<void> {
    if (this.flushing || this.buffer.length === 0) return this.flushing ?? Promise.resolve();
    const batch = this.buffer.splice(0, this.maxBatch);
    this.flushing = this.write(batch).finally(() => {
      this.flushing = null;
      if (this.buffer.length > 0) this.schedule(this.retryDelay());
    });
    return this.flushing;
  }

  private async write(batch: TaskOutcome[]): Promise<void> {
    try {
      const results = await this.store.taskComplete({ outcomes: batch });
      this.failures = 0;
      const stale = results.filter((r) => !r.applied).length;
      this.staleCount += stale;
      if (stale > 0)
        this.logger.warn({ stale }, 'completions rejected: lease lost (another node may have run these tasks)');
      this.emit('flushed', { outcomes: batch, results, stale });
    } catch (error) {
      this.failures += 1;
      this.buffer.unshift(...batch);
      this.logger.error({ err: error, pending: this.buffer.length }, 'writing completions failed; will retry');
    }
  }

  private retryDelay(): number {
    return this.failures === 0 ? 0 : retryPause(this.failures, 50, 5_000);
  }
}
