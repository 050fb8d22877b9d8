/**
 * Kafka settings for a node: the brokers, the topic names (configurable, with documented
 * defaults) and whether this node relays lifecycle events and consumes worker results.
 */
export interface KafkaTopics {
  /** Terminal outcomes: succeeded, failed, expired. */
  completed: string;
  /** Rolled-back attempts: retry_scheduled, lease_expired. */
  rollbacks: string;
  /** Every lifecycle event. */
  events: string;
  /** Outcomes reported by remote workers (consumed by the service). */
  results: string;
}

export interface KafkaSettings {
  brokers: string[];
  topics: KafkaTopics;
  /** Publish the event log to the event topics (one relay per cluster; default true). */
  relayEvents: boolean;
  /** Consume the results topic in this consumer group (default `punctual-results`). */
  resultsGroup: string;
}

export const DEFAULT_TOPICS: KafkaTopics = {
  completed: 'punctual.tasks.completed',
  rollbacks: 'punctual.tasks.rollbacks',
  events: 'punctual.tasks.events',
  results: 'punctual.tasks.results',
};

export const DEFAULT_RESULTS_GROUP = 'punctual-results';

/** Settings from `PUNCTUAL_KAFKA_*` variables, for the given brokers. */
export function kafkaSettingsFromEnv(brokers: string[], env: NodeJS.ProcessEnv = process.env): KafkaSettings {
  const topic = (variable: string, fallback: string): string => {
    const value = env[variable];
    if (value === undefined || value === '') return fallback;
    if (!/^[A-Za-z0-9._-]{1,249}$/.test(value)) {
      throw new Error(`${variable} must be a Kafka topic name (letters, digits, '.', '_', '-'), got "${value}"`);
    }
    return value;
  };
  const relay = env.PUNCTUAL_KAFKA_EVENTS ?? 'on';
  if (relay !== 'on' && relay !== 'off') throw new Error(`PUNCTUAL_KAFKA_EVENTS must be on or off, got "${relay}"`);
  return {
    brokers,
    topics: {
      completed: topic('PUNCTUAL_KAFKA_TOPIC_COMPLETED', DEFAULT_TOPICS.completed),
      rollbacks: topic('PUNCTUAL_KAFKA_TOPIC_ROLLBACKS', DEFAULT_TOPICS.rollbacks),
      events: topic('PUNCTUAL_KAFKA_TOPIC_EVENTS', DEFAULT_TOPICS.events),
      results: topic('PUNCTUAL_KAFKA_TOPIC_RESULTS', DEFAULT_TOPICS.results),
    },
    relayEvents: relay === 'on',
    resultsGroup: env.PUNCTUAL_KAFKA_RESULTS_GROUP || DEFAULT_RESULTS_GROUP,
  };
}
