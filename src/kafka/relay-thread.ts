/**
 * The event relay on a thread of its own, with its own store connection and producer, so that
 * reading the log and encoding messages never take event-loop time from firing tasks (measured
 * on the main thread: lateness p99 ×3 on 2 cores with the relay on; docs/benchmarks.md).
 *
 * The main thread sends `wake` when the node changed tasks, `watch` once something listens for
 * published batches, and `stop` at shutdown; the thread sends back lease changes, log records and,
 * when watched, published batches (event types and times only: copying them across threads costs
 * the main thread time, so nobody pays for it unless asked).
 */
import { EventEmitter, once } from 'node:events';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { Logger } from '../dispatch/logger.ts';
import { openStore } from '../store/open-store.ts';
import { EventRelay, type EventRelayEvents, type PublishedBatch, type Relay } from './event-relay.ts';
import { SerialProducer } from './serial-producer.ts';
import type { KafkaSettings } from './settings.ts';

interface RelayThreadData {
  storeUrl: string;
  settings: KafkaSettings;
  owner: string;
}

type ToThread = { type: 'wake' } | { type: 'watch' } | { type: 'stop' };
type FromThread =
  | { type: 'published'; batch: PublishedBatch }
  | { type: 'lease'; held: boolean }
  | { type: 'log'; level: keyof Logger; obj: object; msg?: string }
  | { type: 'stopped' };

/** The main thread's handle on a relay thread. */
export class RelayThread extends EventEmitter<EventRelayEvents> implements Relay {
  private readonly data: RelayThreadData;
  private readonly logger: Logger;
  private worker: Worker | null = null;
  private leader = false;

  constructor(data: RelayThreadData, logger: Logger) {
    super();
    this.data = data;
    this.logger = logger;
    // (EventEmitter's own event, outside the typed map.)
    (this as EventEmitter).on('newListener', (event: string) => {
      if (event === 'published') this.worker?.postMessage({ type: 'watch' } satisfies ToThread);
    });
  }

  get isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    if (this.worker) return;
    const worker = new Worker(new URL(import.meta.url), { workerData: this.data });
    worker.on('message', (message: FromThread) => this.receive(message));
    worker.on('error', (error) => this.logger.error({ err: error }, 'event relay thread failed'));
    if (this.listenerCount('published') > 0) worker.postMessage({ type: 'watch' } satisfies ToThread);
    this.worker = worker;
  }

  wake(): void {
    this.worker?.postMessage({ type: 'wake' } satisfies ToThread);
  }

  async stop(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.worker = null;
    const stopped = new Promise<void>((resolve) => {
      worker.on('message', (message: FromThread) => message.type === 'stopped' && resolve());
      worker.once('exit', () => resolve());
    });
    worker.postMessage({ type: 'stop' } satisfies ToThread);
    await stopped;
    await worker.terminate();
  }

  private receive(message: FromThread): void {
    switch (message.type) {
      case 'published':
        this.emit('published', message.batch);
        break;
      case 'lease':
        this.leader = message.held;
        this.emit('lease', message.held);
        break;
      case 'log':
        this.logger[message.level](message.obj, message.msg);
        break;
    }
  }
}

/** Inside the thread: run an EventRelay until told to stop. */
async function runInThread(): Promise<void> {
  const port = parentPort;
  if (!port) return;
  const { storeUrl, settings, owner } = workerData as RelayThreadData;
  const send = (message: FromThread) => port.postMessage(message);
  const logAt =
    (level: keyof Logger) =>
    (obj: object, msg?: string): void => {
      // Errors do not survive structured cloning with their message intact: send text.
      const plain = Object.fromEntries(
        Object.entries(obj).map(([k, v]) => [k, v instanceof Error ? { message: v.message, name: v.name } : v]),
      );
      send({ type: 'log', level, obj: plain, msg });
    };
  const logger: Logger = { info: logAt('info'), warn: logAt('warn'), error: logAt('error'), debug: logAt('debug') };
  const store = await openStore(storeUrl);
  const relay = new EventRelay({
    store,
    producer: new SerialProducer({ brokers: settings.brokers, clientId: `${owner}-relay` }),
    topics: settings.topics,
    owner,
    logger,
  });
  const forward = (batch: PublishedBatch) =>
    send({ type: 'published', batch: { ...batch, events: batch.events.map(({ type, at }) => ({ type, at })) } });
  relay.on('lease', (held) => send({ type: 'lease', held }));
  port.on('message', (message: ToThread) => {
    if (message.type === 'wake') relay.wake();
    else if (message.type === 'watch') {
      if (relay.listenerCount('published') === 0) relay.on('published', forward);
    } else if (message.type === 'stop') {
      void relay
        .stop()
        .then(() => store.close())
        .finally(() => send({ type: 'stopped' }));
    }
  });
  relay.start();
  await once(port, 'close');
}

if (!isMainThread && (workerData as RelayThreadData | undefined)?.storeUrl) void runInThread();
