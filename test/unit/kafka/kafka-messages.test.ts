import { describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../../src/core/task.ts';
import { eventMessages } from '../../../src/kafka/event-messages.ts';
import { parseReport } from '../../../src/kafka/results-consumer.ts';
import { DEFAULT_TOPICS, kafkaSettingsFromEnv } from '../../../src/kafka/settings.ts';

const event = (type: TaskEvent['type']): TaskEvent => ({
  seq: 42,
  taskId: '0193a1b2-0000-7000-8000-000000000001',
  namespace: 'default',
  name: 'send-email',
  type,
  attempt: 2,
  at: Date.UTC(2026, 11, 1, 3, 0, 0, 123),
  data: { error: 'boom' },
});

describe('event messages', () => {
  it('puts every event on the events topic, keyed by task, with the documented body', () => {
    const [message, ...others] = eventMessages(event('claimed'), DEFAULT_TOPICS);
    expect(others).toEqual([]);
    expect(message?.topic).toBe('punctual.tasks.events');
    expect(message?.key).toBe('0193a1b2-0000-7000-8000-000000000001');
    expect(JSON.parse(message?.value as string)).toEqual({
      event_id: '0193a1b2-0000-7000-8000-000000000001:42',
      type: 'claimed',
      task_id: '0193a1b2-0000-7000-8000-000000000001',
      namespace: 'default',
      name: 'send-email',
      attempt: 2,
      occurred_at: '2026-12-01T03:00:00.123Z',
      seq: 42,
      data: { error: 'boom' },
    });
    expect(message?.headers).toEqual({
      'punctual-event-id': '0193a1b2-0000-7000-8000-000000000001:42',
      'punctual-event-type': 'claimed',
    });
  });

  it.each([
    ['succeeded', 'punctual.tasks.completed'],
    ['failed', 'punctual.tasks.completed'],
    ['expired', 'punctual.tasks.completed'],
    ['retry_scheduled', 'punctual.tasks.rollbacks'],
    ['lease_expired', 'punctual.tasks.rollbacks'],
  ] as const)('also puts %s on %s', (type, topic) => {
    expect(eventMessages(event(type), DEFAULT_TOPICS).map((m) => m.topic)).toEqual(['punctual.tasks.events', topic]);
  });
});

describe('worker reports', () => {
  it('reads a heartbeat, a success and a failure', () => {
    expect(parseReport('{"task_id":"t","lease_token":"l","status":"heartbeat"}')).toMatchObject({
      status: 'heartbeat',
    });
    expect(parseReport('{"task_id":"t","lease_token":"l","status":"succeeded"}')).toEqual({
      taskId: 't',
      leaseToken: 'l',
      status: 'succeeded',
      error: undefined,
      retryable: undefined,
      retryAfterMs: undefined,
    });
    expect(
      parseReport(
        '{"task_id":"t","lease_token":"l","status":"failed","error":"e","retryable":false,"retry_after_ms":5}',
      ),
    ).toMatchObject({ status: 'failed', error: 'e', retryable: false, retryAfterMs: 5 });
  });

  it.each([
    ['not json', 'not JSON'],
    ['[1]', 'task_id'],
    ['{"lease_token":"l","status":"succeeded"}', 'task_id'],
    ['{"task_id":"t","status":"succeeded"}', 'lease_token'],
    ['{"task_id":"t","lease_token":"l","status":"done"}', 'status'],
    ['{"task_id":"t","lease_token":"l","status":"failed","error":5}', 'error'],
    ['{"task_id":"t","lease_token":"l","status":"failed","retryable":"yes"}', 'retryable'],
    ['{"task_id":"t","lease_token":"l","status":"failed","retry_after_ms":-1}', 'retry_after_ms'],
  ])('refuses %s, naming %s', (value, field) => {
    expect(parseReport(value)).toContain(field);
  });
});

describe('Kafka settings from the environment', () => {
  it('defaults the topics and turns the relay on', () => {
    expect(kafkaSettingsFromEnv(['b:9092'], {})).toEqual({
      brokers: ['b:9092'],
      topics: DEFAULT_TOPICS,
      relayEvents: true,
      resultsGroup: 'punctual-results',
    });
  });

  it('reads topic names, the relay switch and the group', () => {
    const settings = kafkaSettingsFromEnv(['b:9092'], {
      PUNCTUAL_KAFKA_TOPIC_EVENTS: 'my.events',
      PUNCTUAL_KAFKA_EVENTS: 'off',
      PUNCTUAL_KAFKA_RESULTS_GROUP: 'g',
    });
    expect(settings.topics.events).toBe('my.events');
    expect(settings.relayEvents).toBe(false);
    expect(settings.resultsGroup).toBe('g');
  });

  it('refuses a topic name Kafka would refuse, and an unknown relay switch, naming the variable', () => {
    expect(() => kafkaSettingsFromEnv(['b:9092'], { PUNCTUAL_KAFKA_TOPIC_RESULTS: 'a topic' })).toThrow(
      /PUNCTUAL_KAFKA_TOPIC_RESULTS/,
    );
    expect(() => kafkaSettingsFromEnv(['b:9092'], { PUNCTUAL_KAFKA_EVENTS: 'yes' })).toThrow(/PUNCTUAL_KAFKA_EVENTS/);
  });
});
