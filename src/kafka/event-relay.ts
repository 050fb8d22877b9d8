/**
 * The event relay: publishes the store's event log (the outbox, written in the same transaction
 * as each state change) to Kafka, at least once, in commit order, and never skipping an event.
 *
 *   lease the cursor ──▶ read events after it ──▶ publish, await acks ──▶ advance the cursor
 *
 * One node per cluster relays: the cursor (the last seq published) lives in the store under a
 * lease that the holder renews on its own timer and the other nodes take over once it lapses. A
 * crash between the acks and the advance republishes that batch (duplicates, same event ids);
 * nothing is acknowledged to the cursor before the broker has it, so nothing is lost. A broker
 * outage holds the loop on its unacknowledged batch; a store outage makes it back off and retry.
 *
 * Off the firing path: the relay only reads the log, so tasks fire on time whatever Kafka does.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { retryPause } from '../core/backoff.ts';
import type { TaskEvent } from '../core/task.ts';
import type { Logger } from '../dispatch/logger.ts';
import type { TaskStore } from '../store/store.ts';
import { eventMessages } from './event-messages.ts';
import type { SerialProducer } from './serial-producer.ts';
import type { KafkaTopics } from './settings.ts';

export const RELAY_CURSOR = 'kafka-event-relay';

export interface EventRelayOptions {
  store: TaskStore;
  /** The relay's own producer; it closes it when it stops. */
  producer: SerialProducer;
  topics: KafkaTopics;
  /** This node's name, the lease owner. */
  owner: string;
  logger: Logger;
  /** Events read and published per round (default 1,000). */
  batchSize?: number;
  /** Wait between reads when the log has nothing new (default 50 ms; a change on this node wakes it sooner). */
  pollIntervalMs?: number;
  /** How long the relay lease lasts unrenewed (default 10,000 ms; renewed every third of it). */
  leaseMs?: number;
}

/** A batch the broker acknowledged at `ackedAt` (epoch ms); the cursor moved past `lastSeq`. */
export interface PublishedBatch {
  events: Pick<TaskEvent, 'type' | 'at'>[];
  lastSeq: number;
  ackedAt: number;
}

export interface EventRelayEvents {
  published: [PublishedBatch];
  /** This node took (true) or lost (false) the relay lease. */
  lease: [boolean];
}

/** What a node asks of its relay, whether it runs on the main thread or its own (relay-thread.ts). */
export interface Relay {
  readonly isLeader: boolean;
  start(): void;
  wake(): void;
  stop(): Promise<void>;
  on<E extends keyof EventRelayEvents>(event: E, listener: (...args: EventRelayEvents[E]) => void): unknown;
}

export class EventRelay extends EventEmitter<EventRelayEvents> implements Relay {
  private readonly options: Required<EventRelayOptions>;
  private running = false;
  private loop: Promise<void> | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  private held = false;
  /** The last seq this node published (valid while it holds the lease). */
  private seq = 0;
  private wakeUp: (() => void) | null = null;
  private wakeRequested = false;

  constructor(options: EventRelayOptions) {
    super();
    this.options = { batchSize: 1_000, pollIntervalMs: 50, leaseMs: 10_000, ...options };
  }

  get isLeader(): boolean {
    return this.held;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.renewTimer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.options.leaseMs / 3)));
    this.loop = this.run();
  }

  /** Something changed on this node: read the log now rather than at the next poll. */
  wake(): void {
    this.wakeRequested = true;
    this.wakeUp?.();
  }

  /**
   * Stop after the batch in flight (given 5 s; one held up by a broker outage is abandoned, to be
   * published again by the next relay), close the producer and give the lease up so another node
   * takes over at once.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.wake();
    await Promise.race([this.loop, sleep(5_000)]);
    await this.options.producer.close();
    await this.loop;
    if (this.held) {
      const { store, owner } = this.options;
      await store.outboxLease({ name: RELAY_CURSOR, owner, ttlMs: 0 }).catch(() => {});
      this.setHeld(false);
    }
  }

  private async run(): Promise<void> {
    const { store, producer, topics, batchSize, logger, owner } = this.options;
    let failures = 0;
    while (this.running) {
      try {
        if (!this.held) {
          await this.renew();
          if (!this.held) {
            await this.idle(this.options.leaseMs / 3);
            continue;
          }
        }
        const events = await store.eventList({ afterSeq: this.seq, limit: batchSize });
        if (events.length === 0) {
          await this.idle(this.options.pollIntervalMs);
          continue;
        }
        await producer.publishAll(events.flatMap((event) => eventMessages(event, topics)));
        const ackedAt = Date.now();
        const lastSeq = (events.at(-1) as { seq: number }).seq;
        if (!(await store.outboxAdvance({ name: RELAY_CURSOR, owner, seq: lastSeq }))) {
          logger.warn({ node: owner }, 'event relay: lease lost to another node; standing by');
          this.setHeld(false);
          continue;
        }
        this.seq = lastSeq;
        failures = 0;
        this.emit('published', { events, lastSeq, ackedAt });
      } catch (error) {
        failures++;
        logger.error({ err: error, failures }, 'event relay: round failed; retrying');
        await this.idle(retryPause(failures, 100, 5_000));
      }
    }
  }

  /** Take or renew the lease; on taking it, start from the stored cursor. */
  private async renew(): Promise<void> {
    if (!this.running) return;
    const { store, owner, leaseMs, logger } = this.options;
    try {
      const cursor = await store.outboxLease({ name: RELAY_CURSOR, owner, ttlMs: leaseMs });
      if (cursor.held && !this.held) this.seq = cursor.seq;
      this.setHeld(cursor.held);
    } catch (error) {
      logger.warn({ err: error }, 'event relay: could not renew its lease');
    }
  }

  private setHeld(held: boolean): void {
    if (held === this.held) return;
    this.held = held;
    this.options.logger.info(
      { node: this.options.owner, seq: this.seq },
      held ? 'event relay: leading' : 'event relay: standing by',
    );
    this.emit('lease', held);
  }

  /** Wait up to `ms`, or less if woken. */
  private async idle(ms: number): Promise<void> {
    if (this.wakeRequested || !this.running) {
      this.wakeRequested = false;
      return;
    }
    const controller = new AbortController();
    this.wakeUp = () => controller.abort();
    await sleep(ms, undefined, { signal: controller.signal }).catch(() => {});
    this.wakeUp = null;
    this.wakeRequested = false;
  }
}
