/**
 * The store's clock as seen from this node. With several nodes on one database server, leases are
 * judged by the server's clock, and each node fires its timers by the server's clock too, so a
 * node whose own clock runs ahead never fires a task early.
 *
 * Each claim reports the server's time. It was read somewhere between the moment the call left
 * (localStart) and the moment its answer arrived (localEnd), so the true offset lies in
 * [serverNow − localEnd, serverNow − localStart]. The clock takes the lower bound — erring late by
 * at most one round trip, never early — and keeps the tightest bound of the recent samples.
 */
import type { Clock } from '../core/clock.ts';

const SAMPLES = 16;

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

  observe(localStart: number, localEnd: number, serverNow: number): void {
    this.lowerBounds.push(serverNow - localEnd);
    if (this.lowerBounds.length > SAMPLES) this.lowerBounds.shift();
    this.offset = Math.max(...this.lowerBounds);
  }
}
