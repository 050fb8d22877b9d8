/**
 * The results topic: remote workers report the outcome of tasks handed to them (a Kafka target
 * with `await_result`) by producing one JSON message per attempt:
 *
 *   {"task_id": "…", "lease_token": "…", "status": "heartbeat"}      (long task: extends the lease)
 *   {"task_id": "…", "lease_token": "…", "status": "succeeded"}
 *   {"task_id": "…", "lease_token": "…", "status": "failed", "error": "…", "retryable": true,
 *    "retry_after_ms": 30000}
 *
 * Every node consumes the topic in one consumer group, so each message goes to one node; offsets
 * are committed only after the outcomes are in the store (a batch per store call). A message delivered twice (a node
 * died before committing, a worker sent it twice) changes nothing the second time: outcomes are
 * fenced by the lease token, which the first one retired. Malformed messages are logged and skipped.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { Consumer, type Message as KafkaMessage, stringDeserializers } from '@platformatic/kafka';
import { retryPause } from '../core/backoff.ts';
import type { Logger } from '../dispatch/logger.ts';
import type { ReportVerdict, WorkerReport } from '../dispatch/worker-reports.ts';

export interface ResultsConsumerOptions {
  brokers: string[];
  topic: string;
  groupId: string;
  clientId: string;
  logger: Logger;
  /** Applies a batch of reports; a throw means none was stored (the batch is tried again). */
  apply: (reports: WorkerReport[]) => Promise<ReportVerdict[]>;
}

type Stream = Awaited<ReturnType<Consumer<string, string, string, string>['consume']>>;
type Message = KafkaMessage<string, string, string, string>;

/** Reports applied per store call; the stream is paused while this many times four wait. */
const BATCH = 500;

export class ResultsConsumer {
  private readonly options: ResultsConsumerOptions;
  private readonly consumer: Consumer<string, string, string, string>;
  private stream: Stream | null = null;
  private readonly buffer: Message[] = [];
  private draining: Promise<void> | null = null;
  private running = false;

  constructor(options: ResultsConsumerOptions) {
    this.options = options;
    this.consumer = new Consumer({
      clientId: options.clientId,
      groupId: options.groupId,
      bootstrapBrokers: options.brokers,
      deserializers: stringDeserializers,
      // A broker outage must not end the stream (the default gives up after three tries).
      retries: 1_000_000,
      retryDelay: 500,
    });
  }

  async start(): Promise<void> {
    this.running = true;
    const stream = await this.consumer.consume({
      topics: [this.options.topic],
      mode: 'committed',
      fallbackMode: 'earliest',
      autocommit: false,
    });
    this.stream = stream;
    stream.on('error', (error: Error) => this.options.logger.error({ err: error }, 'results consumer: stream error'));
    stream.on('data', (message) => {
      this.buffer.push(message);
      if (this.buffer.length >= 4 * BATCH) stream.pause();
      this.draining ??= this.drain().finally(() => {
        this.draining = null;
      });
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.stream?.close().catch(() => {});
    await this.draining;
    await this.consumer.close(true).catch(() => {});
  }

  /** Applies buffered reports a batch at a time, committing each batch's offsets once it is stored. */
  private async drain(): Promise<void> {
    const { logger } = this.options;
    while (this.buffer.length > 0 && this.running) {
      const batch = this.buffer.splice(0, BATCH);
      const reports: WorkerReport[] = [];
      for (const message of batch) {
        const report = parseReport(message.value);
        if (typeof report === 'string') {
          logger.warn(
            { partition: message.partition, offset: String(message.offset), reason: report },
            'results: message skipped',
          );
        } else {
          reports.push(report);
        }
      }
      // Stopping before the batch is stored: leave its offsets uncommitted; another node applies it.
      if (!(await this.applyUntilStored(reports))) return;
      const lastOfPartition = new Map<number, Message>();
      for (const message of batch) lastOfPartition.set(message.partition, message);
      for (const message of lastOfPartition.values()) {
        await Promise.resolve(message.commit()).catch((error: Error) =>
          logger.warn({ err: error }, 'results: commit failed (the batch may be applied again, harmlessly)'),
        );
      }
      if (this.buffer.length < BATCH) this.stream?.resume();
    }
  }

  /** Applies reports, retrying while the store is down; false if the node stops first. */
  private async applyUntilStored(reports: WorkerReport[]): Promise<boolean> {
    if (reports.length === 0) return true;
    for (let failures = 0; this.running; failures++) {
      try {
        const verdicts = await this.options.apply(reports);
        const unapplied = verdicts.filter((v) => v !== 'applied').length;
        if (unapplied > 0)
          this.options.logger.info({ unapplied }, 'results: reports that changed nothing (stale or unknown)');
        return true;
      } catch (error) {
        this.options.logger.error({ err: error }, 'results: could not apply reports; retrying');
        await sleep(retryPause(failures, 100, 5_000));
      }
    }
    return false;
  }
}

/** A report, or why the message is not one. */
export function parseReport(value: string | undefined): WorkerReport | string {
  let body: unknown;
  try {
    body = JSON.parse(value ?? '');
  } catch {
    return 'the value is not JSON';
  }
  if (typeof body !== 'object' || body === null) return 'the value is not a JSON object';
  const b = body as Record<string, unknown>;
  if (typeof b.task_id !== 'string' || b.task_id === '') return 'task_id must be a non-empty string';
  if (typeof b.lease_token !== 'string' || b.lease_token === '') return 'lease_token must be a non-empty string';
  if (b.status !== 'succeeded' && b.status !== 'failed' && b.status !== 'heartbeat') {
    return 'status must be "succeeded", "failed" or "heartbeat"';
  }
  if (b.error !== undefined && typeof b.error !== 'string') return 'error must be a string';
  if (b.retryable !== undefined && typeof b.retryable !== 'boolean') return 'retryable must be a boolean';
  const retryAfter = b.retry_after_ms;
  if (retryAfter !== undefined && !(Number.isInteger(retryAfter) && (retryAfter as number) >= 0)) {
    return 'retry_after_ms must be a whole number of milliseconds';
  }
  return {
    taskId: b.task_id,
    leaseToken: b.lease_token,
    status: b.status,
    error: b.error as string | undefined,
    retryable: b.retryable as boolean | undefined,
    retryAfterMs: retryAfter as number | undefined,
  };
}
