/**
 * Which Kafka client should Punctual use (docs/adr/0008-kafka-client.md)? @platformatic/kafka
 * against kafkajs 2.2.4, on throwaway single-node brokers (test/helpers/kafka-broker.ts):
 *
 * - throughput: N JSON messages of ~320 bytes, idempotent producer, keyed, 3 partitions, 500 per
 *   awaited send; then read back in a consumer group with manual commits. Rounds alternate which
 *   client goes first.
 * - idempotence: 20,000 messages through a proxy that drops 5 Produce responses after the broker
 *   wrote the batch; an idempotent producer must leave exactly 20,000 records (non-idempotent
 *   producers are run as a control).
 * - outage: one message per 10 ms (and a burst of 300 just before the stop) while the broker is
 *   stopped for 15 s and restarted; acknowledged messages missing from the topic, and duplicates.
 *   @platformatic/kafka with one send in flight (Punctual's send loop) and with concurrent sends;
 *   kafkajs with `retry.retries` 30.
 *
 *   npm run bench:kafka-clients -- [--messages 100000] [--rounds 2] [--skip-outage]
 *
 * --messages: throughput messages per client and round; --rounds: throughput rounds; --skip-outage:
 * leave out the outage part (about 3.5 of the run's 5 minutes). Needs Java 17+ and Maven
 * (scripts/kafka.sh). Prints markdown tables to stdout, progress to stderr, and writes the raw
 * figures to bench/results/kafka-clients-<date>.json.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { Admin, Consumer, type Message, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import kafkajs from 'kafkajs';
import { type KafkaBroker, startKafkaBroker } from '../test/helpers/kafka-broker.ts';
import { sourceVersion, stamp } from './lib/report.ts';
import { note, sleep } from './lib/stats.ts';

const { Kafka, logLevel } = kafkajs;

const ROOT = join(import.meta.dirname, '..');
const CLIENT_ID = 'punctual-bench';
const PARTITIONS = 3;
/** Messages per awaited send, as Punctual's send loop batches (MAX_BATCH in src/kafka/serial-producer.ts). */
const BATCH = 500;
const CONSUME_TIMEOUT_MS = 120_000;

const IDEMPOTENCE_MESSAGES = 20_000;
/** The proxy drops the response of every 7th Produce request, 5 times in all. */
const DROP_EVERY = 7;
const MAX_DROPS = 5;

const OUTAGE = {
  tickMs: 10, // one message per tick
  beforeMs: 5_000, // producing before the broker is stopped
  // Messages sent at once just before the stop, so that sends are in flight when the broker goes
  // away. In the earlier evaluation that happened only when the machine was loaded enough for acks
  // to lag, and only then did concurrent sends lose acknowledged messages.
  burst: 300,
  downMs: 15_000, // from "stopped" to the restart
  afterMs: 10_000, // producing after the broker serves clients again
  settleMs: 90_000, // longest wait for the outstanding sends once producing stops
};
/** Punctual's producer settings (src/kafka/serial-producer.ts). */
const PUNCTUAL_RETRIES = { retries: 1_000_000, retryDelay: 500 };
/** kafkajs' client-wide retry budget for the outage: the default (5) rejects sends during it. */
const KAFKAJS_OUTAGE_RETRIES = 30;

// ---------------------------------------------------------------------------------------------
// The two clients behind one small interface

type ClientName = '@platformatic/kafka' | 'kafkajs';

interface Msg {
  key: string;
  value: string;
}

interface Received extends Msg {
  partition: number;
  offset: string;
}

/** Where the broker says it wrote a send's first message (exact for a one-message send). */
type Ack = { partition: number; offset: string } | undefined;

/** A retry budget (and for @platformatic/kafka the delay between tries, in ms). */
interface RetrySettings {
  retries: number;
  retryDelay?: number;
}

interface ProducerConfig {
  idempotent: boolean;
  /** The client's defaults when absent. */
  retries?: RetrySettings;
}

interface Sender {
  /** One send call with these messages, resolved when the broker has acknowledged it. */
  send(messages: Msg[]): Promise<Ack>;
  close(): Promise<void>;
}

interface Client {
  name: ClientName;
  /** A producer for `topic`, connected (and holding a producer id) before it returns. */
  producer(brokers: string, topic: string, config: ProducerConfig): Promise<Sender>;
  /**
   * Reads `topic` in consumer group `group`, from the committed offset (the earliest for a new
   * group), calling `onMessages` with each batch and committing its offsets after it returned.
   * Returns a function that stops the consumer.
   */
  consume(
    brokers: string,
    topic: string,
    group: string,
    onMessages: (batch: Received[]) => void,
  ): Promise<() => Promise<void>>;
}

const platformatic: Client = {
  name: '@platformatic/kafka',
  async producer(brokers, topic, config) {
    // idempotent: true makes the client use acks=all, one request in flight per broker, and (unless
    // told otherwise) unlimited retries.
    const producer = new Producer({
      clientId: CLIENT_ID,
      bootstrapBrokers: [brokers],
      idempotent: config.idempotent,
      serializers: stringSerializers,
      ...config.retries,
    });
    await producer.metadata({ topics: [topic] });
    if (config.idempotent) await producer.initIdempotentProducer({});
    return {
      async send(messages) {
        const result = await producer.send({ messages: messages.map((m) => ({ topic, key: m.key, value: m.value })) });
        const first = result.offsets?.[0];
        return first && { partition: first.partition, offset: String(first.offset) };
      },
      close: () => producer.close(),
    };
  },
  async consume(brokers, topic, group, onMessages) {
    const consumer = new Consumer({
      clientId: CLIENT_ID,
      groupId: group,
      bootstrapBrokers: [brokers],
      deserializers: stringDeserializers,
    });
    // The default mode, 'latest', ignores committed offsets: a durable group needs 'committed'.
    const stream = await consumer.consume({
      topics: [topic],
      mode: 'committed',
      fallbackMode: 'earliest',
      autocommit: false,
    });
    stream.on('error', (error: Error) => note(`  @platformatic/kafka consumer: ${error.message}`));
    // The stream hands out one message at a time: gather what arrives in one turn of the event
    // loop into a batch, and after processing it commit the last message of each partition.
    let batch: Received[] = [];
    const lastOfPartition = new Map<number, Message<string, string, string, string>>();
    const flush = () => {
      const done = batch;
      batch = [];
      onMessages(done);
      for (const message of lastOfPartition.values()) {
        Promise.resolve(message.commit()).catch((error: Error) => note(`  commit failed: ${error.message}`));
      }
      lastOfPartition.clear();
    };
    stream.on('data', (message: Message<string, string, string, string>) => {
      if (batch.length === 0) setImmediate(flush);
      batch.push({
        key: message.key,
        value: message.value,
        partition: message.partition,
        offset: String(message.offset),
      });
      lastOfPartition.set(message.partition, message);
    });
    return async () => {
      await stream.close();
      await consumer.close(true);
    };
  },
};

function kafkajsClient(brokers: string, retries?: number) {
  return new Kafka({
    clientId: CLIENT_ID,
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
    // The client-wide budget also governs connecting, which the producer's own
    // (unlimited, when idempotent) retries do not cover.
    ...(retries === undefined ? {} : { retry: { retries } }),
  });
}

const kafkajsAdapter: Client = {
  name: 'kafkajs',
  async producer(brokers, topic, config) {
    const producer = kafkajsClient(brokers, config.retries?.retries).producer({
      idempotent: config.idempotent,
      // kafkajs' documentation asks for one request in flight with idempotence.
      ...(config.idempotent ? { maxInFlightRequests: 1 } : {}),
    });
    await producer.connect();
    return {
      async send(messages) {
        const [first] = await producer.send({ topic, acks: -1, messages });
        return first && { partition: first.partition, offset: first.baseOffset ?? first.offset ?? '?' };
      },
      close: () => producer.disconnect(),
    };
  },
  async consume(brokers, topic, group, onMessages) {
    const consumer = kafkajsClient(brokers).consumer({ groupId: group });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, heartbeat }) => {
        if (batch.isEmpty()) return;
        onMessages(
          batch.messages.map((m) => ({
            key: String(m.key),
            value: String(m.value),
            partition: batch.partition,
            offset: m.offset,
          })),
        );
        // Committed offset = the next one to read.
        const next = (BigInt(batch.lastOffset()) + 1n).toString();
        await consumer.commitOffsets([{ topic, partition: batch.partition, offset: next }]);
        await heartbeat();
      },
    });
    return () => consumer.disconnect();
  },
};

const CLIENTS = [platformatic, kafkajsAdapter];

// ---------------------------------------------------------------------------------------------
// Topics, counting, reading back (with @platformatic/kafka's admin client for both)

async function withAdmin<T>(brokers: string, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin({ clientId: CLIENT_ID, bootstrapBrokers: [brokers] });
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

/** Sum of the partitions' end offsets: the number of records the topic holds. */
function countRecords(brokers: string, topic: string): Promise<number> {
  return withAdmin(brokers, async (admin) => {
    const partitions = Array.from({ length: PARTITIONS }, (_, i) => ({ partitionIndex: i, timestamp: -1n }));
    const [listed] = await admin.listOffsets({ topics: [{ name: topic, partitions }] });
    return (listed?.partitions ?? []).reduce((sum, p) => sum + Number(p.offset), 0);
  });
}

/** Creates the topic (auto-creation is off on the broker) and waits until every partition has a leader. */
async function createTopic(brokers: string, topic: string): Promise<void> {
  await withAdmin(brokers, (admin) => admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 }));
  for (const deadline = Date.now() + 15_000; ; ) {
    try {
      await countRecords(brokers, topic); // ListOffsets answers only once the leaders are elected
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(200);
    }
  }
}

/**
 * Reads `topic` from the start in a fresh group until `count` records have come or the time is
 * up; a whole read, to check a topic's contents rather than to time a client.
 */
async function readTopic(client: Client, brokers: string, topic: string, count: number): Promise<Received[]> {
  const read: Received[] = [];
  const { promise, resolve } = Promise.withResolvers<void>();
  const timer = setTimeout(resolve, 60_000);
  const stop = await client.consume(brokers, topic, `read-${topic}`, (batch) => {
    read.push(...batch);
    if (read.length >= count) resolve();
  });
  if (count === 0) resolve();
  await promise;
  clearTimeout(timer);
  await within(15_000, stop(), 'closing the reader');
  return read;
}

/** Waits for `promise`, but no longer than `ms` (a client that hangs while closing must not stall the run). */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => {
      note(`  ${what}: gave up after ${ms / 1000} s`);
      resolve(undefined);
    }, ms);
  });
  try {
    return (await Promise.race([promise.catch((error: Error) => note(`  ${what}: ${error.message}`)), timeout])) as
      | T
      | undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** A JSON message of ~320 bytes, keyed by task id, like a task's payload published by Punctual. */
function taskMessage(i: number): Msg {
  const id = `task-${String(i).padStart(8, '0')}`;
  const value = JSON.stringify({
    id,
    queue: 'default',
    fireAt: new Date(1_800_000_000_000 + i).toISOString(),
    attempt: 0,
    target: { method: 'POST', url: `http://127.0.0.1:8080/hooks/${id}` },
    payload: { orderId: i, note: 'x'.repeat(120) },
  });
  return { key: id, value };
}

function batches<T>(items: T[], size: number): T[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
}

const slug = (name: ClientName) => name.replace(/[^a-z]/g, '');

// ---------------------------------------------------------------------------------------------
// Throughput

interface ThroughputResult {
  round: number;
  client: ClientName;
  messages: number;
  produceMs: number;
  produceMsgsPerSec: number;
  recordsOnTopic: number;
  /** From starting the consumer (group join included) to the last message. */
  consumeMs: number;
  consumeMsgsPerSec: number;
  /** From starting the consumer to the first message: connecting and joining the group. */
  firstMessageMs: number;
  /** From the first message to the last: reading once the group is formed. */
  flowingMsgsPerSec: number;
  received: number;
  distinctKeys: number;
}

async function runThroughput(
  brokers: string,
  client: Client,
  round: number,
  messages: Msg[],
): Promise<ThroughputResult> {
  const topic = `throughput-${slug(client.name)}-r${round}-${Date.now()}`;
  await createTopic(brokers, topic);
  const sender = await client.producer(brokers, topic, { idempotent: true });
  const start = performance.now();
  for (const batch of batches(messages, BATCH)) await sender.send(batch);
  const produceMs = performance.now() - start;
  await within(15_000, sender.close(), 'closing the producer');
  const recordsOnTopic = await countRecords(brokers, topic);

  const keys = new Set<string>();
  let received = 0;
  let firstAt = 0;
  let lastAt = 0;
  const { promise, resolve } = Promise.withResolvers<void>();
  const timer = setTimeout(resolve, CONSUME_TIMEOUT_MS);
  const consumeStart = performance.now();
  const stop = await client.consume(brokers, topic, `throughput-${topic}`, (batch) => {
    if (firstAt === 0) firstAt = performance.now();
    for (const m of batch) {
      JSON.parse(m.value); // the processing
      keys.add(m.key);
    }
    received += batch.length;
    lastAt = performance.now();
    if (received >= messages.length) resolve();
  });
  await promise;
  clearTimeout(timer);
  await within(15_000, stop(), 'closing the consumer');
  const consumeMs = lastAt - consumeStart;
  if (received < messages.length) note(`  ${client.name}: read only ${received} of ${messages.length} messages`);
  return {
    round,
    client: client.name,
    messages: messages.length,
    produceMs: Math.round(produceMs),
    produceMsgsPerSec: Math.round((messages.length / produceMs) * 1000),
    recordsOnTopic,
    consumeMs: Math.round(consumeMs),
    consumeMsgsPerSec: Math.round((received / consumeMs) * 1000),
    firstMessageMs: Math.round(firstAt - consumeStart),
    flowingMsgsPerSec: Math.round((received / (lastAt - firstAt)) * 1000),
    received,
    distinctKeys: keys.size,
  };
}

// ---------------------------------------------------------------------------------------------
// Idempotence: a proxy that loses acknowledgements

interface AckDroppingProxy {
  port: number;
  /** Produce responses seen and dropped since the last `reset`. */
  stats(): { produceResponses: number; drops: number };
  reset(): void;
  close(): Promise<void>;
}

/** Splits a byte stream into Kafka frames: a 4-byte big-endian size, then that many bytes. */
function frameSplitter(): (chunk: Buffer) => Buffer[] {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    const frames: Buffer[] = [];
    while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
      const size = 4 + pending.readInt32BE(0);
      frames.push(pending.subarray(0, size));
      pending = pending.subarray(size);
    }
    return frames;
  };
}

/**
 * A TCP proxy in front of the broker that forwards every request, but instead of forwarding the
 * response to every DROP_EVERY-th Produce request (up to MAX_DROPS times) closes both
 * connections: the broker has written the batch, the client never hears so and sends it again.
 * The broker must advertise the proxy's port, or clients would go round it after bootstrapping.
 */
async function startAckDroppingProxy(brokerPort: () => number): Promise<AckDroppingProxy> {
  let produceResponses = 0;
  let drops = 0;
  const sockets = new Set<Socket>();
  const server = createServer((downstream) => {
    const upstream = connect(brokerPort(), '127.0.0.1');
    sockets.add(downstream).add(upstream);
    const apiKeyOf = new Map<number, number>(); // correlation id -> API key of the request
    const close = () => {
      downstream.destroy();
      upstream.destroy();
      sockets.delete(downstream);
      sockets.delete(upstream);
    };
    for (const socket of [downstream, upstream]) {
      socket.on('error', close);
      socket.on('close', close);
    }
    const requests = frameSplitter();
    downstream.on('data', (chunk: Buffer) => {
      // Request header: size, API key (int16), API version (int16), correlation id (int32).
      for (const frame of requests(chunk)) {
        if (frame.length >= 12) apiKeyOf.set(frame.readInt32BE(8), frame.readInt16BE(4));
        upstream.write(frame);
      }
    });
    const responses = frameSplitter();
    upstream.on('data', (chunk: Buffer) => {
      // Response header: size, correlation id.
      for (const frame of responses(chunk)) {
        const correlationId = frame.readInt32BE(4);
        const apiKey = apiKeyOf.get(correlationId);
        apiKeyOf.delete(correlationId);
        if (apiKey === 0) {
          produceResponses++;
          if (produceResponses % DROP_EVERY === 0 && drops < MAX_DROPS) {
            drops++;
            close();
            return;
          }
        }
        downstream.write(frame);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('the proxy has no port');
  return {
    port: address.port,
    stats: () => ({ produceResponses, drops }),
    reset() {
      produceResponses = 0;
      drops = 0;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

interface IdempotenceResult {
  client: ClientName;
  idempotent: boolean;
  sent: number;
  droppedAcks: number;
  failedSends: number;
  recordsOnTopic: number;
  ms: number;
}

async function runIdempotence(
  client: Client,
  idempotent: boolean,
  proxy: AckDroppingProxy,
  messages: Msg[],
): Promise<IdempotenceResult> {
  const brokers = `127.0.0.1:${proxy.port}`;
  const topic = `idempotence-${slug(client.name)}-${idempotent ? 'on' : 'off'}-${Date.now()}`;
  await createTopic(brokers, topic);
  const sender = await client.producer(brokers, topic, { idempotent });
  proxy.reset();
  let failedSends = 0;
  const start = performance.now();
  for (const batch of batches(messages, BATCH)) {
    try {
      await sender.send(batch);
    } catch (error) {
      failedSends++;
      note(`  send failed: ${(error as Error).message}`);
    }
  }
  const ms = Math.round(performance.now() - start);
  const { drops } = proxy.stats();
  await within(15_000, sender.close(), 'closing the producer');
  return {
    client: client.name,
    idempotent,
    sent: messages.length,
    droppedAcks: drops,
    failedSends,
    recordsOnTopic: await countRecords(brokers, topic),
    ms,
  };
}

// ---------------------------------------------------------------------------------------------
// Outage: the broker stopped for 15 s while messages keep coming

interface OutageVariant {
  client: Client;
  /**
   * serial: Punctual's send loop, one send in flight, carrying whatever is queued (up to 500), a
   * rejected batch queued again after 1 s; concurrent: a send per message, not awaited.
   */
  sends: 'serial' | 'concurrent';
  retries: RetrySettings | undefined;
}

interface OutageResult {
  client: ClientName;
  sends: OutageVariant['sends'];
  retries: RetrySettings | null;
  sent: number;
  acked: number;
  /** Messages sent but not yet acknowledged when the broker was told to stop (the burst included). */
  unackedAtStop: number;
  rejectedSends: number;
  firstRejection: string | null;
  /** Sends still unanswered when the run gave up waiting (OUTAGE.settleMs after producing stopped). */
  unsettled: number;
  recordsOnTopic: number;
  /** Records read back (by the other client, from the start). */
  readBack: number;
  ackedMissing: number;
  /** Up to 10 acknowledged keys missing from the topic, with the offset their ack named and what is there. */
  ackedMissingSample: { key: string; ack: Ack; heldBy: string | undefined }[];
  duplicates: number;
  unackedOnTopic: number;
  /** From "broker serves clients again" to the first ack of a message sent while it was away. */
  firstAckAfterRestartS: number | null;
  maxAckLatencyS: number;
  timeline: string[];
}

async function runOutage(broker: KafkaBroker, variant: OutageVariant): Promise<OutageResult> {
  const { client } = variant;
  const topic = `outage-${slug(client.name)}-${variant.sends}-${Date.now()}`;
  await createTopic(broker.brokers, topic);
  const sender = await client.producer(broker.brokers, topic, { idempotent: true, retries: variant.retries });

  const t0 = performance.now();
  const now = () => (performance.now() - t0) / 1000;
  const timeline: string[] = [];
  const mark = (event: string) => {
    timeline.push(`${now().toFixed(1)}s ${event}`);
    note(`  ${now().toFixed(1)}s ${event}`);
  };

  const sentAt = new Map<string, number>();
  const acks = new Map<string, Ack>();
  const ackTimes: number[] = [];
  let latestAckLatency = 0;
  let rejectedSends = 0;
  let firstRejection: string | null = null;
  const acked = (keys: string[], ack: Ack) => {
    const t = now();
    for (const key of keys) {
      acks.set(key, keys.length === 1 ? ack : undefined);
      latestAckLatency = Math.max(latestAckLatency, t - (sentAt.get(key) ?? t));
    }
    ackTimes.push(t);
  };
  const rejected = (error: Error) => {
    rejectedSends++;
    firstRejection ??= error.message;
  };

  // The send paths: one loop, or a send per message.
  const inFlight = new Set<Promise<void>>();
  const queue: Msg[] = [];
  let producing = true;
  let abandoned = false;
  let wake: (() => void) | undefined; // resolves the serial loop's wait for messages
  const loop =
    variant.sends === 'serial'
      ? (async () => {
          while (!abandoned && (producing || queue.length > 0)) {
            if (queue.length === 0) {
              await new Promise<void>((resolve) => {
                wake = resolve;
              });
              continue;
            }
            const batch = queue.splice(0, BATCH);
            try {
              const ack = await sender.send(batch);
              acked(
                batch.map((m) => m.key),
                ack,
              );
            } catch (error) {
              rejected(error as Error);
              queue.unshift(...batch);
              await sleep(1_000);
            }
          }
        })()
      : undefined;
  const produce = () => {
    const key = `m${sentAt.size}`;
    sentAt.set(key, now());
    const message = { key, value: JSON.stringify({ key, sentAt: Date.now() }) };
    if (variant.sends === 'serial') {
      queue.push(message);
      wake?.();
      return;
    }
    const sending: Promise<void> = sender.send([message]).then(
      (ack) => acked([key], ack),
      (error: Error) => rejected(error),
    );
    inFlight.add(sending);
    void sending.then(() => inFlight.delete(sending));
  };
  const unanswered = () => sentAt.size - acks.size - (variant.sends === 'serial' ? 0 : rejectedSends);
  const tick = setInterval(produce, OUTAGE.tickMs);

  let unackedAtStop = 0;
  let stoppedAt = 0;
  let readyAt = 0;
  try {
    await sleep(OUTAGE.beforeMs);
    for (let i = 0; i < OUTAGE.burst; i++) produce();
    unackedAtStop = unanswered();
    mark(`stopping the broker (sent ${sentAt.size}, ${unackedAtStop} not yet acknowledged)`);
    await broker.down();
    stoppedAt = now();
    mark('broker stopped');
    await sleep(OUTAGE.downMs);
    mark(`restarting the broker (sent ${sentAt.size}, acked ${acks.size})`);
    await broker.up();
    readyAt = now();
    mark('broker serves clients');
    await sleep(OUTAGE.afterMs);
  } catch (error) {
    abandoned = true;
    void sender.close().catch(() => {});
    throw error;
  } finally {
    clearInterval(tick);
    producing = false;
    wake?.();
  }
  mark(`stopped producing (sent ${sentAt.size}, acked ${acks.size})`);
  const settled = Promise.all([loop, ...inFlight]).then(() => true);
  if (!(await Promise.race([settled, sleep(OUTAGE.settleMs).then(() => false)]))) {
    abandoned = true;
    mark('gave up waiting for the outstanding sends');
  }
  const unsettled = unanswered();
  mark(`sends settled: acked ${acks.size}, rejected sends ${rejectedSends}`);
  await within(15_000, sender.close(), 'closing the producer');

  // What does the topic hold? Read back with the other client.
  const recordsOnTopic = await countRecords(broker.brokers, topic);
  const reader = CLIENTS.find((c) => c !== client) ?? client;
  const records = await readTopic(reader, broker.brokers, topic, recordsOnTopic);
  const copies = new Map<string, number>();
  const keyAt = new Map<string, string>();
  for (const r of records) {
    copies.set(r.key, (copies.get(r.key) ?? 0) + 1);
    keyAt.set(`${r.partition}/${r.offset}`, r.key);
  }
  const missing = [...acks.keys()].filter((key) => !copies.has(key));
  const firstAfterStop = ackTimes.find((t) => t > stoppedAt);
  mark(`read back ${records.length} of ${recordsOnTopic} records; ${missing.length} acknowledged messages missing`);
  return {
    client: client.name,
    sends: variant.sends,
    retries: variant.retries ?? null,
    sent: sentAt.size,
    acked: acks.size,
    unackedAtStop,
    rejectedSends,
    firstRejection,
    unsettled,
    recordsOnTopic,
    readBack: records.length,
    ackedMissing: missing.length,
    ackedMissingSample: missing.slice(0, 10).map((key) => {
      const ack = acks.get(key);
      return { key, ack, heldBy: ack && keyAt.get(`${ack.partition}/${ack.offset}`) };
    }),
    duplicates: records.length - copies.size,
    unackedOnTopic: [...copies.keys()].filter((key) => !acks.has(key)).length,
    firstAckAfterRestartS: firstAfterStop === undefined ? null : Math.round((firstAfterStop - readyAt) * 10) / 10,
    maxAckLatencyS: Math.round(latestAckLatency * 10) / 10,
    timeline,
  };
}

// ---------------------------------------------------------------------------------------------
// The run

/** Brokers started by this run and not yet stopped: stopped on Ctrl-C too. */
const liveBrokers = new Set<KafkaBroker>();

async function withBroker<T>(fn: (broker: KafkaBroker) => Promise<T>): Promise<T> {
  note('starting a throwaway Kafka broker (scripts/kafka.sh)');
  const broker = await startKafkaBroker();
  liveBrokers.add(broker);
  note(`  broker on ${broker.brokers}`);
  try {
    return await fn(broker);
  } finally {
    await broker.stop();
    liveBrokers.delete(broker);
  }
}

function onSignal(signal: NodeJS.Signals): void {
  note(`\n${signal}: stopping the broker(s) this run started`);
  const stops = [...liveBrokers].map((broker) => broker.stop().catch(() => {}));
  void Promise.race([Promise.all(stops), sleep(40_000)]).finally(() => process.exit(130));
}

/** The Kafka release scripts/kafka.sh runs: KAFKA_VERSION, or the script's default. */
function kafkaVersion(): string {
  const script = readFileSync(join(ROOT, 'scripts', 'kafka.sh'), 'utf8');
  return process.env.KAFKA_VERSION ?? /KAFKA_VERSION=\$\{KAFKA_VERSION:-([^}]+)\}/.exec(script)?.[1] ?? 'unknown';
}

function packageVersion(name: string): string {
  return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
}

const fmt = (n: number) => n.toLocaleString('en-US');

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} must be a positive integer, got ${value}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      messages: { type: 'string', default: '100000' },
      rounds: { type: 'string', default: '2' },
      'skip-outage': { type: 'boolean', default: false },
    },
  });
  const count = positiveInt(values.messages, '--messages');
  const rounds = positiveInt(values.rounds, '--rounds');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, onSignal);

  const startedAt = new Date();
  const versions = {
    node: process.version,
    kafka: kafkaVersion(),
    '@platformatic/kafka': packageVersion('@platformatic/kafka'),
    kafkajs: packageVersion('kafkajs'),
  };
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
  const messages = Array.from({ length: count }, (_, i) => taskMessage(i));
  const idempotenceMessages = Array.from({ length: IDEMPOTENCE_MESSAGES }, (_, i) => taskMessage(i));
  const header =
    `Kafka clients: @platformatic/kafka ${versions['@platformatic/kafka']} vs kafkajs ${versions.kafkajs}\n` +
    `broker: Apache Kafka ${versions.kafka}, one KRaft node on loopback; Node ${versions.node}; ` +
    `${machine.cpus} cores (${machine.cpuModel}); load average at start ${machine.loadAverageAtStart.join(' ')}\n` +
    `date: ${startedAt.toISOString()}`;
  note(`${header}\n`);

  const throughput: ThroughputResult[] = [];
  const idempotence: IdempotenceResult[] = [];
  const outage: OutageResult[] = [];
  const failures: Record<string, string> = {};
  const part = async (name: string, fn: () => Promise<void>) => {
    note(`== ${name}`);
    try {
      await fn();
    } catch (error) {
      failures[name] = (error as Error).stack ?? String(error);
      note(`  FAILED: ${(error as Error).message}`);
    }
  };

  await part('throughput and outage broker', () =>
    withBroker(async (broker) => {
      await part('throughput', async () => {
        for (let round = 1; round <= rounds; round++) {
          for (const client of round % 2 === 1 ? CLIENTS : [...CLIENTS].reverse()) {
            note(`round ${round}/${rounds}: ${client.name}, ${fmt(count)} messages`);
            const result = await runThroughput(broker.brokers, client, round, messages);
            note(`  produce ${fmt(result.produceMsgsPerSec)} msg/s, consume ${fmt(result.consumeMsgsPerSec)} msg/s`);
            throughput.push(result);
          }
        }
      });
      if (values['skip-outage']) return;
      await part('outage', async () => {
        const variants: OutageVariant[] = [
          { client: platformatic, sends: 'serial', retries: PUNCTUAL_RETRIES },
          { client: platformatic, sends: 'concurrent', retries: PUNCTUAL_RETRIES },
          // The earlier evaluation's configuration, in which concurrent sends lost acknowledged messages.
          { client: platformatic, sends: 'concurrent', retries: undefined },
          { client: kafkajsAdapter, sends: 'concurrent', retries: { retries: KAFKAJS_OUTAGE_RETRIES } },
        ];
        for (const variant of variants) {
          const retries = variant.retries === undefined ? 'default retries' : `retries ${variant.retries.retries}`;
          note(`outage: ${variant.client.name}, ${variant.sends} sends, ${retries}`);
          outage.push(await runOutage(broker, variant));
        }
      });
    }),
  );

  // A broker of its own that advertises the proxy's port (a setting of scripts/kafka.sh, which
  // startKafkaBroker passes on from the environment).
  await part('idempotence', async () => {
    let brokerPort = 0;
    const proxy = await startAckDroppingProxy(() => brokerPort);
    const previous = process.env.KAFKA_ADVERTISED_PORT;
    process.env.KAFKA_ADVERTISED_PORT = String(proxy.port);
    try {
      await withBroker(async (broker) => {
        if (previous === undefined) delete process.env.KAFKA_ADVERTISED_PORT;
        else process.env.KAFKA_ADVERTISED_PORT = previous;
        brokerPort = broker.port;
        for (const idempotent of [true, false]) {
          for (const client of CLIENTS) {
            note(`idempotence: ${client.name}, ${idempotent ? 'idempotent' : 'not idempotent (control)'}`);
            const result = await runIdempotence(client, idempotent, proxy, idempotenceMessages);
            note(`  ${result.droppedAcks} acks dropped, ${fmt(result.recordsOnTopic)} records`);
            idempotence.push(result);
          }
        }
      });
    } finally {
      if (previous === undefined) delete process.env.KAFKA_ADVERTISED_PORT;
      else process.env.KAFKA_ADVERTISED_PORT = previous;
      await proxy.close();
    }
  });

  // The report.
  const out: string[] = [header, ''];
  out.push(
    `## Throughput: ${fmt(count)} messages of ~${messages[0]?.value.length ?? 0} bytes, idempotent, keyed, ` +
      `${PARTITIONS} partitions, ${BATCH} per awaited send; consumed in a group with manual commits`,
    '',
    '| round | client | produce msg/s | consume msg/s (join included) | join to first message | consume msg/s after the first | records |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const r of throughput) {
    out.push(
      `| ${r.round} | ${r.client} | ${fmt(r.produceMsgsPerSec)} | ${fmt(r.consumeMsgsPerSec)} | ` +
        `${(r.firstMessageMs / 1000).toFixed(1)} s | ${fmt(r.flowingMsgsPerSec)} | ${fmt(r.recordsOnTopic)} |`,
    );
  }
  out.push(
    '',
    `## Idempotence: ${fmt(IDEMPOTENCE_MESSAGES)} messages, ${BATCH} per send, through a proxy dropping ` +
      `${MAX_DROPS} Produce responses after the broker wrote the batch`,
    '',
    '| client | producer | acks dropped | failed sends | records on the topic | messages sent |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
  );
  for (const r of idempotence) {
    out.push(
      `| ${r.client} | ${r.idempotent ? 'idempotent' : 'not idempotent (control)'} | ${r.droppedAcks} | ` +
        `${r.failedSends} | ${fmt(r.recordsOnTopic)} | ${fmt(r.sent)} |`,
    );
  }
  if (!values['skip-outage']) {
    out.push(
      '',
      `## Outage: one message per ${OUTAGE.tickMs} ms and ${OUTAGE.burst} at once just before the stop, ` +
        `broker stopped ${OUTAGE.downMs / 1000} s and restarted, idempotent producers`,
      '',
      '| client | sends | retries | sent | unacked at the stop | acked | rejected sends | unsettled | records | acked but missing | duplicates | first ack after restart | max ack latency |',
      '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const r of outage) {
      const retries =
        r.retries === null
          ? 'client default'
          : `${fmt(r.retries.retries)}${r.retries.retryDelay === undefined ? '' : `, ${r.retries.retryDelay} ms apart`}`;
      const firstAck = r.firstAckAfterRestartS === null ? '-' : `${r.firstAckAfterRestartS} s`;
      out.push(
        `| ${r.client} | ${r.sends} | ${retries} | ${fmt(r.sent)} | ${fmt(r.unackedAtStop)} | ${fmt(r.acked)} | ${fmt(r.rejectedSends)} | ` +
          `${fmt(r.unsettled)} | ${fmt(r.recordsOnTopic)} | **${fmt(r.ackedMissing)}** | ${fmt(r.duplicates)} | ` +
          `${firstAck} | ${r.maxAckLatencyS} s |`,
      );
    }
    out.push(
      '',
      'serial: one send in flight, carrying what is queued (up to 500), as Punctual sends; concurrent: one send ' +
        "per message, not awaited. Retries: Punctual's settings, or @platformatic/kafka's defaults for an " +
        'idempotent producer (unlimited, 1,000 ms apart); kafkajs: the client-wide retry.retries.',
    );
  }
  const loadAverageAtEnd = loadavg().map((l) => Math.round(l * 100) / 100);
  out.push('', `load average at end: ${loadAverageAtEnd.join(' ')}`);
  for (const [name, error] of Object.entries(failures)) out.push('', `${name} FAILED:`, error);

  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `kafka-clients-${stamp(startedAt)}.json`);
  const json = {
    benchmark: 'kafka-clients',
    versions,
    source: sourceVersion(),
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: { ...machine, loadAverageAtEnd },
    options: { messages: count, rounds, skipOutage: values['skip-outage'] },
    settings: { partitions: PARTITIONS, batch: BATCH, idempotenceMessages: IDEMPOTENCE_MESSAGES, outage: OUTAGE },
    throughput,
    idempotence,
    outage,
    failures,
  };
  writeFileSync(`${file}.tmp`, `${JSON.stringify(json, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  out.push('', `raw results: ${relative(process.cwd(), file)}`);
  process.stdout.write(`\n${out.join('\n')}\n`);
  if (Object.keys(failures).length > 0) process.exitCode = 1;
}

await main();
// Clients can leave sockets and timers behind after closing: don't wait for them.
process.exit();
