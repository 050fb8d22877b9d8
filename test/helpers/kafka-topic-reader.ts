/**
 * Reads Kafka topics from the beginning for as long as a test runs, through broker outages, and
 * keeps every message received: tests count, dedupe and order them afterwards.
 */
import { Consumer, stringDeserializers } from '@platformatic/kafka';

export interface ReceivedMessage {
  topic: string;
  partition: number;
  offset: bigint;
  key: string;
  value: string;
  headers: Record<string, string>;
  /** The record's timestamp (producer time), epoch ms. */
  timestamp: number;
  /** When this reader received it, epoch ms. */
  receivedAt: number;
}

export interface TopicReader {
  /** Everything received so far on `topic`, in arrival order. */
  messages(topic: string): ReceivedMessage[];
  stop(): Promise<void>;
}

export async function startTopicReader(brokers: string, topics: string[]): Promise<TopicReader> {
  const consumer = new Consumer({
    clientId: 'test-reader',
    groupId: `test-reader-${process.pid}-${Date.now()}-${Math.random()}`,
    bootstrapBrokers: [brokers],
    deserializers: stringDeserializers,
    retries: 1_000_000,
    retryDelay: 250,
  });
  const received = new Map<string, ReceivedMessage[]>(topics.map((t) => [t, []]));
  const stream = await consumer.consume({ topics, mode: 'earliest', autocommit: false });
  stream.on('error', () => {}); // outages are expected; the consumer retries
  stream.on('data', (message) => {
    const headers: Record<string, string> = {};
    for (const [name, value] of message.headers ?? new Map()) headers[String(name)] = String(value);
    received.get(message.topic)?.push({
      topic: message.topic,
      partition: message.partition,
      offset: message.offset,
      key: String(message.key),
      value: String(message.value),
      headers,
      timestamp: Number(message.timestamp),
      receivedAt: Date.now(),
    });
  });
  return {
    messages: (topic) => received.get(topic) ?? [],
    async stop() {
      await stream.close().catch(() => {});
      await consumer.close(true).catch(() => {});
    },
  };
}
