/**
 * One idempotent Kafka producer behind one send loop. Callers queue messages and await the
 * broker's acknowledgement (acks=all); the loop sends whatever is queued as one batch, and never
 * two at once: @platformatic/kafka's idempotent producer lost acknowledged messages with
 * concurrent sends in a broker outage (ADR 8), and one request per batch is also what makes it fast.
 * A broker outage holds the loop (the client retries without end) and resumes where it stopped.
 */
import { Producer, stringSerializers } from '@platformatic/kafka';

export interface OutgoingMessage {
  topic: string;
  key: string;
  value: string;
  headers: Record<string, string>;
}

export interface SerialProducerOptions {
  /** `host:port` of one or more brokers. */
  brokers: string[];
  clientId: string;
}

interface Pending {
  message: OutgoingMessage;
  done: (error: Error | null) => void;
}

const MAX_BATCH = 500;

export class SerialProducer {
  private readonly producer: Producer<string, string, string, string>;
  private readonly queue: Pending[] = [];
  private sending = false;
  private closed = false;

  constructor(options: SerialProducerOptions) {
    this.producer = new Producer({
      clientId: options.clientId,
      bootstrapBrokers: options.brokers,
      idempotent: true,
      serializers: stringSerializers,
      retries: 1_000_000,
      retryDelay: 500,
    });
  }

  /** Resolves with null once the broker has the message, or with the error that stopped it. */
  publish(message: OutgoingMessage): Promise<Error | null> {
    if (this.closed) return Promise.resolve(new Error('the Kafka producer is closed'));
    const sent = new Promise<Error | null>((resolve) => {
      this.queue.push({ message, done: resolve });
    });
    void this.pump();
    return sent;
  }

  /** Publishes every message (in order, per key) and throws the first error. */
  async publishAll(messages: OutgoingMessage[]): Promise<void> {
    const results = await Promise.all(messages.map((m) => this.publish(m)));
    const failure = results.find((r) => r !== null);
    if (failure) throw failure;
  }

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
    for (const p of this.queue.splice(0)) p.done(new Error('the Kafka producer is closed'));
    await this.producer.close().catch(() => {});
  }
}

/** An error's message with its nested causes and error codes, to classify it. */
export function describeKafkaError(error: Error): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    parts.push(current.message, String((current as { apiId?: unknown }).apiId ?? ''));
    const nested = (current as { errors?: unknown[] }).errors;
    if (Array.isArray(nested)) for (const e of nested) if (e instanceof Error) parts.push(describeKafkaError(e));
    current = current.cause;
  }
  return parts.join(' ');
}
