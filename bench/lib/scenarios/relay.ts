/**
 * relay: the Kafka event relay, on a throwaway broker (scripts/kafka.sh).
 *
 * - lateness with the relay off and on, alternating (off, on, off, on): the relay reads the event
 *   log beside the dispatcher, so firing lateness should not move beyond noise;
 * - during the "on" runs, the delay from each state change (the event's time in the store) to the
 *   event's record on the events topic (its timestamp, set as the relay sends it), p50/p99;
 * - events/s: a backlog of events (tasks created with the relay off) drained by one relay.
 */

import { EventRelay } from '../../../src/kafka/event-relay.ts';
import { SerialProducer } from '../../../src/kafka/serial-producer.ts';
import type { KafkaSettings } from '../../../src/kafka/settings.ts';
import { ensureTopics } from '../../../src/kafka/topics.ts';
import { startKafkaBroker } from '../../../test/helpers/kafka-broker.ts';
import { startTopicReader } from '../../../test/helpers/kafka-topic-reader.ts';
import type { FreshStore } from '../env.ts';
import type { Row, ScenarioResult } from '../report.ts';
import { benchLogger, distribution, fmtInt, fmtMs, note, progress, round, roundAll, sleep } from '../stats.ts';
import { farFuture, newTask } from '../tasks.ts';
import { type LatenessOptions, runLateness } from './lateness.ts';

export interface RelayOptions {
  lateness: LatenessOptions;
  rounds: number;
  /** Tasks created (one event each) for the drain measurement. */
  backlog: number;
}

let topicRun = 0;

function settingsFor(brokers: string): KafkaSettings {
  const run = `bench.${process.pid}.${++topicRun}`;
  return {
    brokers: [brokers],
    topics: {
      completed: `${run}.completed`,
      rollbacks: `${run}.rollbacks`,
      events: `${run}.events`,
      results: `${run}.results`,
    },
    relayEvents: true,
    resultsGroup: `${run}.group`,
  };
}

export async function runRelay(fresh: () => FreshStore, o: RelayOptions): Promise<ScenarioResult> {
  note('starting a throwaway Kafka broker');
  const broker = await startKafkaBroker();
  try {
    const runs: {
      relay: boolean;
      lateness: Record<string, number>;
      delay?: Record<string, number>;
      events?: object;
    }[] = [];
    for (let round = 0; round < o.rounds; round++) {
      for (const relay of [false, true]) {
        note(`lateness, relay ${relay ? 'on' : 'off'} (round ${round + 1} of ${o.rounds})`);
        const store = fresh();
        try {
          const kafka = relay ? settingsFor(broker.brokers) : undefined;
          const reader = kafka ? await readerFor(broker.brokers, kafka) : undefined;
          const result = await runLateness(store, { ...o.lateness, kafka, label: 'relay' });
          const hires = (result.raw.lateness as { handlerStartMs: Record<string, number> }).handlerStartMs;
          const entry: (typeof runs)[number] = { relay, lateness: hires };
          if (reader) {
            await sleep(1_000); // the last completions' events
            const delays = reader.delays();
            entry.delay = roundAll(distribution(delays)) as unknown as Record<string, number>;
            entry.events = { received: reader.received(), tasks: o.lateness.count, delayByType: reader.byType() };
            await reader.stop();
          }
          runs.push(entry);
        } finally {
          await store.dispose();
        }
      }
    }
    const drain = await measureDrain(fresh(), broker.brokers, o.backlog);
    return report(runs, drain, o);
  } finally {
    await broker.stop();
  }
}

/** Reads the run's events topic and keeps, per event, state change → readable on the topic. */
async function readerFor(brokers: string, kafka: KafkaSettings) {
  const { completed, rollbacks, events } = kafka.topics;
  await ensureTopics([brokers], [completed, rollbacks, events, kafka.topics.results], 'bench');
  const reader = await startTopicReader(brokers, [events]);
  // The record's timestamp is set by the relay's producer as it sends the batch (CreateTime): the
  // delay to it is the relay's, not this reader's (whose group join takes seconds at first).
  const delays = (wanted: (type: string) => boolean) =>
    reader.messages(events).flatMap((m) => {
      const body = JSON.parse(m.value);
      return wanted(body.type) ? [m.timestamp - Date.parse(body.occurred_at)] : [];
    });
  return {
    // Without the creation burst: those tasks are created the moment the node starts, before its
    // relay has checked the topics and taken its lease (kept per type in the raw JSON).
    delays: () => delays((type) => type !== 'created'),
    received: () => reader.messages(events).length,
    byType: () =>
      Object.fromEntries(
        ['created', 'claimed', 'succeeded'].map((t) => [t, roundAll(distribution(delays((type) => type === t)))]),
      ),
    stop: () => reader.stop(),
  };
}

/** `count` created events in the store, then one relay publishes them all: events per second. */
async function measureDrain(fresh: FreshStore, brokers: string, count: number) {
  note(`relay drain: ${fmtInt(count)} events`);
  const store = await fresh.open();
  try {
    for (let i = 0; i < count; i += 1_000) {
      const tasks = Array.from({ length: Math.min(1_000, count - i) }, (_, j) => newTask(farFuture(), i + j));
      await store.taskCreate({ tasks });
    }
    const kafka = settingsFor(brokers);
    await ensureTopics([brokers], [kafka.topics.events, kafka.topics.completed, kafka.topics.rollbacks], 'bench');
    const relay = new EventRelay({
      store,
      producer: new SerialProducer({ brokers: [brokers], clientId: 'bench-relay' }),
      topics: kafka.topics,
      owner: 'bench',
      logger: benchLogger('relay'),
    });
    let published = 0;
    let firstAt = 0;
    relay.on('published', ({ events }) => {
      firstAt ||= performance.now();
      published += events;
    });
    const started = performance.now();
    relay.start();
    const stopProgress = progress('relay drain', () => `${fmtInt(published)}/${fmtInt(count)} events`);
    while (published < count && performance.now() - started < 300_000) await sleep(20);
    const elapsedMs = performance.now() - started;
    stopProgress();
    await relay.stop();
    return { count, published, elapsedMs: round(elapsedMs), eventsPerSec: round((published / elapsedMs) * 1000, 0) };
  } finally {
    await store.close();
    await fresh.dispose();
  }
}

function report(
  runs: { relay: boolean; lateness: Record<string, number>; delay?: Record<string, number>; events?: object }[],
  drain: Awaited<ReturnType<typeof measureDrain>>,
  o: RelayOptions,
): ScenarioResult {
  const series = (relay: boolean, key: string) =>
    runs
      .filter((r) => r.relay === relay)
      .map((r) => fmtMs(r.lateness[key] ?? Number.NaN))
      .join(', ');
  const on = runs.filter((r) => r.delay);
  const rows: Row[] = [
    { metric: 'lateness p50 (ms), relay off | on', value: `${series(false, 'p50')} | ${series(true, 'p50')}` },
    { metric: 'lateness p99 (ms), relay off | on', value: `${series(false, 'p99')} | ${series(true, 'p99')}` },
    { metric: 'lateness max (ms), relay off | on', value: `${series(false, 'max')} | ${series(true, 'max')}` },
    {
      metric: 'state change → record on the topic p50 / p99 (ms, after start)',
      value: on.map((r) => `${fmtMs(r.delay?.p50 ?? Number.NaN)} / ${fmtMs(r.delay?.p99 ?? Number.NaN)}`).join(', '),
    },
    {
      metric: 'events received during the run',
      value: on.map((r) => fmtInt((r.events as { received: number }).received)).join(', '),
      target: `${fmtInt(o.lateness.count * 3)} each`,
      pass: on.every((r) => (r.events as { received: number }).received >= o.lateness.count * 3),
    },
    {
      metric: 'relay drain (events/s)',
      value: `${fmtInt(drain.eventsPerSec)} (${fmtInt(drain.published)} in ${fmtInt(drain.elapsedMs)} ms)`,
    },
  ];
  return { scenario: 'relay', rows, raw: { settings: o, runs, drain } };
}
