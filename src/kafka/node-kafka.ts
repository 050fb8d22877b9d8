/**
 * Everything Kafka on one node: the Kafka target's producer, the event relay (on its own thread
 * when the store's URL is known) and the results consumer. Started in the background, so that
 * Kafka never holds up firing tasks: topics are created, then the relay and the results consumer
 * start (its group join waits out a dead member's session); retried while the brokers are away.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { retryPause } from '../core/backoff.ts';
import type { Logger } from '../dispatch/logger.ts';
import type { ReportVerdict, WorkerReport } from '../dispatch/worker-reports.ts';
import type { TaskStore } from '../store/store.ts';
import { KafkaPublisher } from '../targets/kafka.ts';
import type { Target } from '../targets/target.ts';
import { EventRelay, type Relay } from './event-relay.ts';
import { RelayThread } from './relay-thread.ts';
import { ResultsConsumer } from './results-consumer.ts';
import { SerialProducer } from './serial-producer.ts';
import type { KafkaSettings } from './settings.ts';
import { ensureTopics } from './topics.ts';

export interface NodeKafkaOptions {
  settings: KafkaSettings;
  store: TaskStore;
  /** When given, the relay runs on a thread of its own with its own connection to this store. */
  storeUrl?: string;
  nodeId: string;
  logger: Logger;
  applyReports: (reports: WorkerReport[]) => Promise<ReportVerdict[]>;
}

export class NodeKafka {
  /** Publishes tasks with a Kafka target. */
  readonly target: Target;
  /** Null when this store has no event log, or events are turned off. */
  readonly relay: Relay | null;
  private readonly options: NodeKafkaOptions;
  private readonly producer: SerialProducer;
  private readonly results: ResultsConsumer;
  private starting: Promise<void> | null = null;
  private stopping = false;

  constructor(options: NodeKafkaOptions) {
    const { settings, store, storeUrl, nodeId, logger } = options;
    this.options = options;
    this.producer = new SerialProducer({ brokers: settings.brokers, clientId: nodeId });
    this.target = new KafkaPublisher(this.producer);
    this.relay = null;
    if (settings.relayEvents && store.capabilities.eventLog) {
      this.relay = storeUrl
        ? new RelayThread({ storeUrl, settings, owner: nodeId }, logger)
        : new EventRelay({
            store,
            // Its own producer: a relay batch never queues ahead of a task's publication.
            producer: new SerialProducer({ brokers: settings.brokers, clientId: `${nodeId}-relay` }),
            topics: settings.topics,
            owner: nodeId,
            logger,
          });
    } else if (settings.relayEvents) {
      logger.warn({}, 'this store keeps no table-wide event log: lifecycle events are not published to Kafka');
    }
    this.results = new ResultsConsumer({
      brokers: settings.brokers,
      topic: settings.topics.results,
      groupId: settings.resultsGroup,
      clientId: nodeId,
      logger,
      apply: options.applyReports,
    });
  }

  start(): void {
    this.starting ??= this.startInBackground();
  }

  /** This node changed tasks: the relay publishes their events without waiting for its poll. */
  wake(): void {
    this.relay?.wake();
  }

  /**
   * Stops consuming results, then the relay (events it has not published yet stay in the log for
   * the next relay), then the target's producer.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.results.stop(); // also ends a group join still under way
    await this.starting;
    await this.relay?.stop();
    await this.producer.close();
  }

  private async startInBackground(): Promise<void> {
    const { settings, nodeId, logger } = this.options;
    const { completed, rollbacks, events, results } = settings.topics;
    const topics = this.relay ? [completed, rollbacks, events, results] : [results];
    for (let failures = 0; !this.stopping; failures++) {
      try {
        await ensureTopics(settings.brokers, topics, nodeId);
        this.relay?.start();
        if (this.stopping) return;
        await this.results.start();
        logger.info({ topics }, 'kafka: relaying events and consuming results');
        return;
      } catch (error) {
        logger.error({ err: error, failures }, 'kafka: could not start; retrying');
        await sleep(retryPause(failures, 500, 10_000));
      }
    }
  }
}
