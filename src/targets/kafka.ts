/**
 * The Kafka target: at the task's time, publishes its payload (JSON) to a topic — a delay queue
 * for Kafka — through the node's one idempotent producer. Every attempt waits for the broker's
 * acknowledgement, and its outcome follows the same retry rules as other targets.
 *
 * With `await_result`, publishing hands the task to a remote worker instead of finishing it: the
 * message carries the lease token, the task stays running, and the worker's report on the results
 * topic (kafka/results-consumer.ts) settles it. No report before the lease ends (the task's timeout
 * plus the lease grace) counts as a lost attempt, retried like any other.
 */
import type { KafkaTarget, Task } from '../core/task.ts';
import { describeKafkaError, type SerialProducer } from '../kafka/serial-producer.ts';
import { abortMessage } from './handler.ts';
import type { RunContext, Target, TargetResult } from './target.ts';

/** Broker errors no retry can fix: the attempt fails the task at once. */
const PERMANENT_ERRORS = /TOPIC_AUTHORIZATION_FAILED|INVALID_TOPIC_EXCEPTION|MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE/;

export class KafkaPublisher implements Target {
  private readonly producer: SerialProducer;

  constructor(producer: SerialProducer) {
    this.producer = producer;
  }

  async run(task: Task, ctx: RunContext): Promise<TargetResult> {
    const target = task.target as KafkaTarget;
    const headers: Record<string, string> = {
      ...target.headers,
      'punctual-task-id': task.id,
      'punctual-attempt': String(ctx.attempt),
      'idempotency-key': ctx.idempotencyKey,
    };
    if (target.await_result) headers['punctual-lease-token'] = task.leaseToken as string;
    const sent = this.producer.publish({
      topic: target.topic,
      key: target.key ?? task.id,
      value: JSON.stringify(task.payload ?? null),
      headers,
    });
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
    if (outcome === null) return target.await_result ? { ok: true, handedOff: true } : { ok: true };
    const error = `Kafka publish to ${target.topic} failed: ${outcome.message}`;
    return { ok: false, retryable: !PERMANENT_ERRORS.test(describeKafkaError(outcome)), error };
  }
}
