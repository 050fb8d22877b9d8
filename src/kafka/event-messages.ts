/**
 * The Kafka messages for one lifecycle event: always one on the events topic, and one on the
 * completion or rollback topic when the event is one of those. Keyed by task id, so one task's
 * events stay in one partition, in order.
 *
 * `event_id` is `<task id>:<seq>`: the same for every publication of an event (the relay
 * publishes at least once), unique across events, so consumers dedupe on it.
 */
import type { TaskEvent, TaskEventType } from '../core/task.ts';
import type { OutgoingMessage } from './serial-producer.ts';
import type { KafkaTopics } from './settings.ts';

const COMPLETIONS: ReadonlySet<TaskEventType> = new Set(['succeeded', 'failed', 'expired']);
const ROLLBACKS: ReadonlySet<TaskEventType> = new Set(['retry_scheduled', 'lease_expired']);

export interface EventMessageBody {
  event_id: string;
  type: TaskEventType;
  task_id: string;
  namespace: string;
  name: string;
  attempt: number;
  occurred_at: string;
  seq: number;
  data: Record<string, unknown> | null;
}

export function eventId(event: Pick<TaskEvent, 'taskId' | 'seq'>): string {
  return `${event.taskId}:${event.seq}`;
}

export function eventMessages(event: TaskEvent, topics: KafkaTopics): OutgoingMessage[] {
  const body: EventMessageBody = {
    event_id: eventId(event),
    type: event.type,
    task_id: event.taskId,
    namespace: event.namespace,
    name: event.name,
    attempt: event.attempt,
    occurred_at: new Date(event.at).toISOString(),
    seq: event.seq,
    data: event.data,
  };
  const message = {
    key: event.taskId,
    value: JSON.stringify(body),
    headers: { 'punctual-event-id': body.event_id, 'punctual-event-type': event.type },
  };
  const messages = [{ topic: topics.events, ...message }];
  if (COMPLETIONS.has(event.type)) messages.push({ topic: topics.completed, ...message });
  else if (ROLLBACKS.has(event.type)) messages.push({ topic: topics.rollbacks, ...message });
  return messages;
}
