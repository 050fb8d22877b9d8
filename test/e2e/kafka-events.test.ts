/**
 * Lifecycle events relayed to Kafka, on a real broker (Apache Kafka 4, KRaft, scripts/kafka.sh)
 * from a real `punctual serve` on SQLite. Every event the store committed must arrive on the
 * events topic (counted by event id: none missing), completions and rollbacks on theirs, in order
 * per task — through a 15 s broker outage and a kill -9 of the service. Duplicates are allowed
 * (at least once) and counted. Then two nodes on one PostgreSQL store (one relays), and two
 * in-process relays on one store (one at a time, handing over at stop).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../../src/dispatch/logger.ts';
import { EventRelay, RELAY_CURSOR } from '../../src/kafka/event-relay.ts';
import { SerialProducer } from '../../src/kafka/serial-producer.ts';
import { DEFAULT_TOPICS, type KafkaTopics } from '../../src/kafka/settings.ts';
import { ensureTopics } from '../../src/kafka/topics.ts';
import { type KafkaBroker, startKafkaBroker } from '../helpers/kafka-broker.ts';
import { type ReceivedMessage, startTopicReader, type TopicReader } from '../helpers/kafka-topic-reader.ts';
import { adminQuery, dropSchema, randomSchema, storeUrl } from '../helpers/postgres-server.ts';
import { api, type ServiceProcess, startService } from '../helpers/service-process.ts';
import { makeTask } from '../helpers/task-factory.ts';
import { tempSqliteStore } from '../helpers/temp-sqlite.ts';
import { waitUntil } from '../helpers/wait.ts';

const HANDLERS = join(import.meta.dirname, 'fixtures', 'handlers.js');

let broker: KafkaBroker;
let reader: TopicReader;
const services: ServiceProcess[] = [];

beforeAll(async () => {
  broker = await startKafkaBroker();
  // The service creates its topics at start; the reader subscribes to them once they exist.
  await ensureTopics([broker.brokers], Object.values(DEFAULT_TOPICS), 'test-setup');
  reader = await startTopicReader(broker.brokers, [
    DEFAULT_TOPICS.events,
    DEFAULT_TOPICS.completed,
    DEFAULT_TOPICS.rollbacks,
  ]);
}, 240_000);

afterAll(async () => {
  for (const service of services) await service.kill('SIGKILL');
  await reader?.stop();
  await broker?.stop();
});

interface StoredEvent {
  task_id: string;
  seq: number;
  type: string;
}

/** A node on a fresh SQLite file, relaying to the broker. */
async function startNode(dbPath: string): Promise<ServiceProcess> {
  const service = await startService({
    store: `sqlite:${dbPath}`,
    handlers: HANDLERS,
    args: ['--kafka-brokers', broker.brokers],
    env: { E2E_RUN_LOG: join(dbPath, '..', 'runs.log') },
  });
  services.push(service);
  return service;
}

/** `count` tasks due over `spreadMs` from 2 s on; every tenth is `flaky` (one retry). */
async function createTasks(url: string, count: number, spreadMs: number, run: string): Promise<string[]> {
  const start = Date.now() + 2_000;
  const ids: string[] = [];
  for (let offset = 0; offset < count; offset += 1_000) {
    const tasks = Array.from({ length: Math.min(1_000, count - offset) }, (_, j) => {
      const i = offset + j;
      return {
        name: i % 10 === 0 ? 'flaky' : 'send-email',
        description: `${run} ${i}`,
        scheduled_date: new Date(start + Math.floor((i * spreadMs) / count)).toISOString(),
        backoff: { type: 'exponential', base_ms: 100, factor: 2, max_ms: 100 },
      };
    });
    const created = await api(url, '/v1/tasks/batch', { body: { tasks } });
    expect(created.status).toBe(200);
    ids.push(...created.body.results.map((r: { task: { id: string } }) => r.task.id));
  }
  return ids;
}

function storedEvents(dbPath: string, taskIds: Set<string>): StoredEvent[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    const rows = db.prepare('SELECT task_id, seq, type FROM task_events ORDER BY seq').all() as StoredEvent[];
    return rows.filter((e) => taskIds.has(e.task_id));
  } finally {
    db.close();
  }
}

function finished(dbPath: string, taskIds: Set<string>): number {
  const db = new Database(dbPath, { readonly: true });
  try {
    const rows = db.prepare("SELECT id FROM tasks WHERE state IN ('succeeded', 'failed')").all() as { id: string }[];
    return rows.filter((r) => taskIds.has(r.id)).length;
  } finally {
    db.close();
  }
}

interface Tally {
  missing: number;
  duplicates: number;
  outOfOrder: number;
}

/** Compares what the store committed with what the topics hold, for these tasks. */
function tally(expected: StoredEvent[], topic: string, types: Set<string> | null, taskIds: Set<string>): Tally {
  const wanted = expected.filter((e) => types === null || types.has(e.type));
  const seen = new Map<string, number>();
  const lastSeqOfTask = new Map<string, number>();
  let outOfOrder = 0;
  for (const message of reader.messages(topic) as ReceivedMessage[]) {
    const body = JSON.parse(message.value);
    if (!taskIds.has(body.task_id)) continue;
    const count = seen.get(body.event_id) ?? 0;
    seen.set(body.event_id, count + 1);
    // First deliveries of one task's events come in seq order (a redelivery may repeat older ones).
    if (count === 0) {
      if ((lastSeqOfTask.get(body.task_id) ?? 0) > body.seq) outOfOrder++;
      lastSeqOfTask.set(body.task_id, body.seq);
    }
  }
  const missing = wanted.filter((e) => !seen.has(`${e.task_id}:${e.seq}`)).length;
  const duplicates = [...seen.values()].reduce((sum, n) => sum + n - 1, 0);
  return { missing, duplicates, outOfOrder };
}

async function waitForAll(expected: StoredEvent[], taskIds: Set<string>, timeoutMs: number): Promise<void> {
  await waitUntil(() => tally(expected, DEFAULT_TOPICS.events, null, taskIds).missing === 0, {
    timeoutMs,
    intervalMs: 500,
  }).catch(() => {});
}

function freshDb(): string {
  return join(mkdtempSync(join(tmpdir(), 'punctual-kafka-events-')), 'punctual.db');
}

async function runAndCheck(
  count: number,
  label: string,
  disrupt: (node: ServiceProcess, dbPath: string) => Promise<void>,
) {
  const dbPath = freshDb();
  const node = await startNode(dbPath);
  const ids = new Set(await createTasks(node.url, count, 10_000, label));
  await disrupt(node, dbPath);
  await waitUntil(() => finished(dbPath, ids) === count, { timeoutMs: 120_000, intervalMs: 500 });
  const expected = storedEvents(dbPath, ids);
  await waitForAll(expected, ids, 60_000);
  const events = tally(expected, DEFAULT_TOPICS.events, null, ids);
  const completed = tally(expected, DEFAULT_TOPICS.completed, new Set(['succeeded', 'failed', 'expired']), ids);
  const rollbacks = tally(expected, DEFAULT_TOPICS.rollbacks, new Set(['retry_scheduled', 'lease_expired']), ids);
  console.log(`${label}: ${expected.length} events stored`, { events, completed, rollbacks });
  return { expected, events, completed, rollbacks };
}

describe('the event relay', () => {
  it('publishes every event of 10,000 tasks, in order per task, with the documented fields', {
    timeout: 240_000,
  }, async () => {
    const { expected, events, completed, rollbacks } = await runAndCheck(10_000, 'steady', async () => {});
    // created, claimed, succeeded per task; the 1,000 flaky ones add retry_scheduled and claimed.
    expect(expected).toHaveLength(10_000 * 3 + 1_000 * 2);
    expect(events).toEqual({ missing: 0, duplicates: 0, outOfOrder: 0 });
    expect(completed).toEqual({ missing: 0, duplicates: 0, outOfOrder: 0 });
    expect(rollbacks).toEqual({ missing: 0, duplicates: 0, outOfOrder: 0 });
    expect(reader.messages(DEFAULT_TOPICS.rollbacks).length).toBeGreaterThanOrEqual(1_000);

    const sample = reader.messages(DEFAULT_TOPICS.completed).at(-1) as ReceivedMessage;
    const body = JSON.parse(sample.value);
    expect(body).toMatchObject({ type: 'succeeded', task_id: sample.key, event_id: `${sample.key}:${body.seq}` });
    expect(['send-email', 'flaky']).toContain(body.name);
    expect(body.attempt).toBeGreaterThanOrEqual(1);
    expect(Date.parse(body.occurred_at)).toBeGreaterThan(Date.now() - 300_000);
    expect(sample.headers).toMatchObject({ 'punctual-event-id': body.event_id, 'punctual-event-type': 'succeeded' });
  });

  it('loses nothing when the broker is down for 15 s mid-run', { timeout: 300_000 }, async () => {
    const { events, completed, rollbacks } = await runAndCheck(10_000, 'broker outage', async () => {
      await new Promise((resolve) => setTimeout(resolve, 5_000)); // tasks are firing
      await broker.down();
      await new Promise((resolve) => setTimeout(resolve, 15_000));
      await broker.up();
    });
    expect(events.missing).toBe(0);
    expect(completed.missing).toBe(0);
    expect(rollbacks.missing).toBe(0);
    expect(events.outOfOrder).toBe(0);
  });

  it('loses nothing when the service is killed -9 mid-run and restarted', { timeout: 300_000 }, async () => {
    const { events, completed, rollbacks } = await runAndCheck(10_000, 'kill -9', async (node, dbPath) => {
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      await node.kill('SIGKILL');
      await startNode(dbPath); // takes the relay over once the dead node's lease lapses (10 s)
    });
    expect(events.missing).toBe(0);
    expect(completed.missing).toBe(0);
    expect(rollbacks.missing).toBe(0);
  });
});

describe('on PostgreSQL with two nodes', () => {
  it('one node relays, and every event of both nodes arrives once', { timeout: 180_000 }, async () => {
    const base = inject('postgresUrl');
    const schema = randomSchema();
    const store = storeUrl(base, { schema });
    const runLog = join(mkdtempSync(join(tmpdir(), 'punctual-kafka-pg-')), 'runs.log');
    const start = () =>
      startService({
        store,
        handlers: HANDLERS,
        args: ['--kafka-brokers', broker.brokers],
        env: { E2E_RUN_LOG: runLog },
      });
    try {
      const nodes = [await start(), await start()];
      services.push(...nodes);
      const ids = new Set([
        ...(await createTasks(nodes[0]?.url as string, 2_000, 4_000, 'pg a')),
        ...(await createTasks(nodes[1]?.url as string, 2_000, 4_000, 'pg b')),
      ]);
      const query = (sql: string) => adminQuery(base, sql.replaceAll('$schema', `"${schema}"`), [[...ids]]);
      await waitUntil(
        async () =>
          (
            await query(
              "SELECT count(*)::int AS n FROM $schema.tasks WHERE id = ANY($1) AND state IN ('succeeded', 'failed')",
            )
          )[0]?.n === 4_000,
        { timeoutMs: 120_000, intervalMs: 500 },
      );
      const expected = (await query(
        'SELECT task_id, seq::int AS seq, type FROM $schema.task_events WHERE task_id = ANY($1) ORDER BY seq',
      )) as StoredEvent[];
      expect(expected).toHaveLength(4_000 * 3 + 400 * 2);
      await waitForAll(expected, ids, 60_000);
      expect(tally(expected, DEFAULT_TOPICS.events, null, ids)).toEqual({ missing: 0, duplicates: 0, outOfOrder: 0 });
      const leaders = nodes.filter((n) => n.logs.some((line) => line.includes('event relay: leading')));
      expect(leaders).toHaveLength(1);
    } finally {
      await dropSchema(base, schema).catch(() => {});
    }
  });
});

describe('one relay per store', () => {
  it('publishes each event once with two relays, and the second takes over when the first stops', {
    timeout: 120_000,
  }, async () => {
    const { store, cleanup } = await tempSqliteStore();
    const topics: KafkaTopics = {
      ...DEFAULT_TOPICS,
      events: 'test.relay.events',
      completed: 'test.relay.completed',
      rollbacks: 'test.relay.rollbacks',
    };
    await ensureTopics([broker.brokers], [topics.events, topics.completed, topics.rollbacks], 'test-setup');
    const own = await startTopicReader(broker.brokers, [topics.events]);
    const relay = (owner: string) =>
      new EventRelay({
        store,
        producer: new SerialProducer({ brokers: [broker.brokers], clientId: owner }),
        topics,
        owner,
        logger: silentLogger,
        pollIntervalMs: 20,
        leaseMs: 2_000,
      });
    const first = relay('first');
    const second = relay('second');
    try {
      first.start();
      await waitUntil(() => first.isLeader, { timeoutMs: 10_000 });
      second.start();
      await store.taskCreate({ tasks: Array.from({ length: 500 }, () => makeTask()) });
      await waitUntil(() => own.messages(topics.events).length >= 500, { timeoutMs: 30_000 });
      expect(second.isLeader).toBe(false);

      await first.stop(); // gives the lease up: the second leads without waiting for it to lapse
      await waitUntil(() => second.isLeader, { timeoutMs: 5_000 });
      await store.taskCreate({ tasks: Array.from({ length: 500 }, () => makeTask()) });
      await waitUntil(() => own.messages(topics.events).length >= 1_000, { timeoutMs: 30_000 });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const ids = own.messages(topics.events).map((m) => JSON.parse(m.value).event_id);
      expect(ids).toHaveLength(1_000);
      expect(new Set(ids).size).toBe(1_000);
      expect((await store.outboxLease({ name: RELAY_CURSOR, owner: 'probe', ttlMs: 0 })).seq).toBe(1_000);
    } finally {
      await first.stop();
      await second.stop();
      await own.stop();
      await cleanup();
    }
  });
});
