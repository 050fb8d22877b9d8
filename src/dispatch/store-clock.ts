/**
 * The store's clock as seen from this node. With several nodes on one database server, leases are
 * judged by the server's clock, and each node fires its timers by the server's clock too, so a
 * node whose own clock runs ahead never fires a task early.
 *
 * The node reads the server's time with a cheap query now and then (`store.timeNow()`). The
 * server read its clock somewhere between the moment the call left (localStart) and the moment
 * its answer arrived (localEnd), so the true offset lies in [serverNow − localEnd,
 * serverNow − localStart]. The clock takes the lower bound — erring late by at most one round
 * trip, never early — and keeps the tightest bound of the recent samples. (Claims also report the
 * server's time, but read at the start of a statement that may run for tens of milliseconds under
 * load: as samples they made every timer fire that much late.)
 */
import type { Clock } from '../core/clock.ts';

const SAMPLES = 16;
const PROBES_PER_SYNC = 3;

export class StoreClock implements Clock {
  private readonly local: Clock;
  private readonly lowerBounds: number[] = [];
  private offset = 0;

  constructor(local: Clock) {
    this.local = local;
  }

  now(): number {
    return this.local.now() + this.offset;
  }

  /** Milliseconds the server's clock is ahead of this node's (negative: behind). */
  get offsetMs(): number {
    return this.offset;
  }

  /** Read the server's clock a few times and keep the tightest bounds. */
  async sync(readServerTime: () => Promise<number>): Promise<void> {
    for (let i = 0; i < PROBES_PER_SYNC; i++) {
      const localStart = this.local.now();
      const serverNow = await readServerTime();
      this.observe(localStart, this.local.now(), serverNow);
    }
  }

  observe(localStart: number, localEnd: number, serverNow: number): void {
    this.lowerBounds.push(serverNow - localEnd);
    if (this.lowerBounds.length > SAMPLES) this.lowerBounds.shift();
    this.offset = Math.max(...this.lowerBounds);
  }
}
