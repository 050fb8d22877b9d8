/**
 * The Kafka target on a real broker (Apache Kafka 4, KRaft, started by scripts/kafka.sh): tasks
 * created through the API of a real `punctual serve` publish their payload at their time, once
 * each, with their key and headers; a node without brokers fails such tasks saying why.
 */
import { Admin, Consumer, stringDeserializers } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KafkaBroker, startKafkaBroker } from '../helpers/kafka-broker.ts';
import { api, type ServiceProcess, startService } from '../helpers/service-process.ts';
import { waitUntil } from '../helpers/wait.ts';

const TOPIC = 'punctual.test.delayed';

let broker: KafkaBroker;
let service: ServiceProcess;

beforeAll(async () => {
  broker = await startKafkaBroker(); // the first run fetches the broker's jars from Maven Central
  const admin = new Admin({ clientId: 'test-admin', bootstrapBrokers: [broker.brokers] });
  await admin.createTopics({ topics: [TOPIC], partitions: 3, replicas: 1 });
  await admin.close();
  service = await startService({ args: ['--kafka-brokers', broker.brokers] });
}, 240_000);

afterAll(async () => {
  await service?.kill('SIGTERM');
  await broker?.stop();
});

interface Received {
  key: string;
  value: string;
  headers: Record<string, string>;
  timestamp: number;
}

/** Reads the topic from the beginning until `count` messages have come (or the time is up). */
async function readTopic(count: number, timeoutMs: number): Promise<Received[]> {
  const consumer = new Consumer({
    clientId: 'test-consumer',
    groupId: `test-${Date.now()}`,
    bootstrapBrokers: [broker.brokers],
    deserializers: stringDeserializers,
  });
  const received: Received[] = [];
  try {
    const stream = await consumer.consume({ topics: [TOPIC], mode: 'earliest', autocommit: false });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      stream.on('data', (message) => {
        const headers: Record<string, string> = {};
        for (const [name, value] of message.headers ?? new Map()) headers[String(name)] = String(value);
        received.push({
          key: String(message.key),
          value: String(message.value),
          headers,
          timestamp: Number(message.timestamp),
        });
        if (received.length >= count) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await stream.close();
  } finally {
    await consumer.close(true);
  }
  return received;
}

describe('the Kafka target', () => {
  it("publishes each task's payload at its time, once, with its key and headers", { timeout: 120_000 }, async () => {
    const firstDueAt = Date.now() + 3_000;
    const tasks = Array.from({ length: 1_000 }, (_, i) => ({
      name: 'delayed',
      scheduled_date: new Date(firstDueAt + i * 2).toISOString(),
      payload: { n: i },
      target: {
        type: 'kafka',
        topic: TOPIC,
        ...(i % 2 === 0 ? { key: `order-${i}` } : {}),
        headers: { 'x-source': 'test' },
      },
    }));
    const created = await api(service.url, '/v1/tasks/batch', { body: { tasks } });
    expect(created.status).toBe(200);
    const ids: string[] = created.body.results.map((r: { task: { id: string } }) => r.task.id);

    const messages = await readTopic(1_000, 60_000);
    const byTask = new Map(messages.map((m) => [m.headers['punctual-task-id'], m]));
    expect(messages).toHaveLength(1_000); // none twice
    expect(byTask.size).toBe(1_000); // none missing
    ids.forEach((id, i) => {
      const message = byTask.get(id);
      expect(JSON.parse(message?.value ?? 'null')).toEqual({ n: i });
      expect(message?.key).toBe(i % 2 === 0 ? `order-${i}` : id);
      expect(message?.headers['x-source']).toBe('test');
      expect(message?.headers['idempotency-key']).toBe(id);
      expect(message?.timestamp).toBeGreaterThanOrEqual(firstDueAt + i * 2); // never before its time
    });
    await waitUntil(
      async () => ((await api(service.url, `/v1/tasks/${ids[999]}`)).body.state === 'succeeded' ? true : undefined),
      { timeoutMs: 10_000, what: 'the last task to be recorded as succeeded' },
    );
  });

  it('delivers every task due while the broker is down, once it is back', { timeout: 180_000 }, async () => {
    const before = (await readTopic(1_000, 10_000)).length;
    await broker.down();
    const tasks = Array.from({ length: 50 }, (_, i) => ({
      name: 'during-outage',
      scheduled_date: new Date().toISOString(),
      payload: { outage: i },
      target: { type: 'kafka', topic: TOPIC },
      max_attempts: 20,
      timeout_ms: 2_000,
      backoff: { base_ms: 500, max_ms: 2_000, jitter: false },
    }));
    const created = await api(service.url, '/v1/tasks/batch', { body: { tasks } });
    expect(created.status).toBe(200);
    const ids: string[] = created.body.results.map((r: { task: { id: string } }) => r.task.id);
    await new Promise((resolve) => setTimeout(resolve, 8_000));
    await broker.up();
    for (const id of ids) {
      await waitUntil(
        async () => ((await api(service.url, `/v1/tasks/${id}`)).body.state === 'succeeded' ? true : undefined),
        { timeoutMs: 60_000, what: `task ${id} to succeed after the outage` },
      );
    }
    // At least once: attempts that timed out during the outage may publish as well.
    const after = await readTopic(before + 50, 20_000);
    const delivered = new Set(after.map((m) => m.headers['punctual-task-id']));
    for (const id of ids) expect(delivered.has(id)).toBe(true);
  });

  it('fails a Kafka task at once on a node without brokers, saying what is missing', { timeout: 60_000 }, async () => {
    const bare = await startService();
    try {
      const created = await api(bare.url, '/v1/tasks', {
        body: { name: 'x', scheduled_date: new Date().toISOString(), target: { type: 'kafka', topic: TOPIC } },
      });
      expect(created.status).toBe(201);
      const task = await waitUntil(
        async () => {
          const { body } = await api(bare.url, `/v1/tasks/${created.body.id}`);
          return body.state === 'failed' ? body : undefined;
        },
        { timeoutMs: 10_000, what: 'the task to fail' },
      );
      expect(task.attempts).toBe(1);
      expect(task.last_error).toMatch(/no Kafka brokers configured \(PUNCTUAL_KAFKA_BROKERS\)/);
    } finally {
      await bare.kill('SIGTERM');
    }
  });
});
