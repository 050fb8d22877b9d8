/**
 * The Kafka target: at the task's time, publishes its payload (JSON) to a topic — a delay queue
 * for Kafka. One idempotent producer per node; every attempt waits for the broker's
 * acknowledgement (acks=all), and its outcome follows the same retry rules as other targets.
 *
 * Sends go through one loop that batches whatever is queued: @platformatic/kafka's idempotent
 * producer must never have two sends in flight (concurrent sends lost acknowledged messages in a
 * broker outage, in our tests), and one request per batch is also what makes it fast.
 */
import { Producer, stringSerializers } from '@platformatic/kafka';
import type { KafkaTarget, Task } from '../core/task.ts';
import { abortMessage } from './handler.ts';
import type { RunContext, Target, TargetResult } from './target.ts';

export interface KafkaPublisherOptions {
  /** `host:port` of one or more brokers. */
  brokers: string[];
  clientId?: string;
}

interface Pending {
  message: { topic: string; key: string; value: string; headers: Record<string, string> };
  done: (error: Error | null) => void;
}

/** Broker errors no retry can fix: the attempt fails the task at once. */
const PERMANENT_ERRORS = /TOPIC_AUTHORIZATION_FAILED|INVALID_TOPIC_EXCEPTION|MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE/;
const MAX_BATCH = 500;

export class KafkaPublisher implements Target {
  private readonly producer: Producer<string, string, string, string>;
  private readonly queue: Pending[] = [];
  private sending = false;
  private closed = false;

  constructor(options: KafkaPublisherOptions) {
    this.producer = new Producer({
      clientId: options.clientId ?? 'punctual',
      bootstrapBrokers: options.brokers,
      idempotent: true,
      serializers: stringSerializers,
      // A broker outage delays attempts; each attempt's own timeout decides when to give up.
      retries: 1_000_000,
      retryDelay: 500,
    });
  }

  async run(task: Task, ctx: RunContext): Promise<TargetResult> {
    const target = task.target as KafkaTarget;
    const message = {
      topic: target.topic,
      key: target.key ?? task.id,
      value: JSON.stringify(task.payload ?? null),
      headers: {
        ...target.headers,
        'punctual-task-id': task.id,
        'punctual-attempt': String(ctx.attempt),
        'idempotency-key': ctx.idempotencyKey,
      },
    };
    const sent = new Promise<Error | null>((resolve) => {
      this.queue.push({ message, done: resolve });
    });
    void this.pump();
    const aborted = new Promise<'aborted'>((resolve) => {
      if (ctx.signal.aborted) resolve('aborted');
      else ctx.signal.addEventListener('abort', () => resolve('aborted'), { once: true });
    });
    const outcome = await Promise.race([sent, aborted]);
    if (outcome === 'aborted') {
      // The message may still be published: consumers dedupe on the idempotency-key header.
      return {
        ok: false,
        retryable: true,
        error: `Kafka publish to ${target.topic}: ${abortMessage(ctx.signal, task)}`,
      };
    }
    if (outcome === null) return { ok: true };
    const error = `Kafka publish to ${target.topic} failed: ${outcome.message}`;
    return { ok: false, retryable: !PERMANENT_ERRORS.test(describe(outcome)), error };
  }

  /** The one send loop: a batch at a time, never two sends in flight. */
  private async pump(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const batch = this.queue.splice(0, MAX_BATCH);
        try {
          await this.producer.send({ messages: batch.map((p) => p.message) });
          for (const p of batch) p.done(null);
        } catch (error) {
          for (const p of batch) p.done(error as Error);
        }
      }
    } finally {
      this.sending = false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.done(new Error('the Kafka publisher is closed'));
    await this.producer.close().catch(() => {});
  }
}

/** An error's message with its nested causes and error codes, to classify it. */
function describe(error: Error): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    parts.push(current.message, String((current as { apiId?: unknown }).apiId ?? ''));
    const nested = (current as { errors?: unknown[] }).errors;
    if (Array.isArray(nested)) for (const e of nested) if (e instanceof Error) parts.push(describe(e));
    current = current.cause;
  }
  return parts.join(' ');
}
