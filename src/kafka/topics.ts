/**
 * Creates the topics Punctual publishes to and consumes from, if missing, with the cluster's
 * default partition count and replication factor (so production settings stay the operator's).
 * Several nodes may start at once: a topic another node created meanwhile is not an error.
 */
import { Admin } from '@platformatic/kafka';
import { describeKafkaError } from './serial-producer.ts';

export async function ensureTopics(brokers: string[], topics: string[], clientId: string): Promise<void> {
  const admin = new Admin({ clientId, bootstrapBrokers: brokers, retries: 3, retryDelay: 500 });
  try {
    const existing = new Set(await admin.listTopics());
    const missing = [...new Set(topics)].filter((t) => !existing.has(t));
    if (missing.length === 0) return;
    try {
      await admin.createTopics({ topics: missing });
    } catch (error) {
      if (!/TOPIC_ALREADY_EXISTS|already exists/i.test(describeKafkaError(error as Error))) throw error;
    }
  } finally {
    await admin.close().catch(() => {});
  }
}
