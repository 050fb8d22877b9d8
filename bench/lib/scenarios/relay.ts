/**
 * relay: the Kafka event relay, on a throwaway broker (scripts/kafka.sh).
 *
 * - lateness with the relay off and on, alternating (off, on, off, on): the relay reads the event
 *   log beside the dispatcher, so firing lateness should not move beyond noise;
 * - during the "on" runs, the delay from each state change (the event's time in the store) to the
 *   broker's acknowledgement of its record (it is then on the topic), p50/p99;
 * - events/s: a backlog of events (tasks created with the relay off) drained by one relay.
 */

import { EventRelay } from '../../../src/kafka/event-relay.ts';
import { SerialProducer } from '../../../src/kafka/serial-producer.ts';
import type { KafkaSettings } from '../../../src/kafka/settings.ts';
import { ensureTopics } from '../../../src/kafka/topics.ts';
import type { Punctual } from '../../../src/punctual.ts';
import { startKafkaBroker } from '../../../test/helpers/kafka-broker.ts';
import type { FreshStore } from '../env.ts';
import type { Row, ScenarioResult } from '../report.ts';
import { benchLogger, distribution, fmtInt, fmtMs, note, progress, round, roundAll, sleep } from '../stats.ts';
import { farFuture, newTask } from '../tasks.ts';
import { type LatenessOptions, runLateness } from './lateness.ts';

interface RunFigures {
  relay: boolean;
  lateness: Record<string, number>;
  eventLoopDelayMs: object;
  delay?: Record<string, number>;
  events?: { published: number; tasks: number; delayByType: object };
}

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
    const runs: RunFigures[] = [];
    for (let round = 0; round < o.rounds; round++) {
      for (const relay of [false, true]) {
        note(`lateness, relay ${relay ? 'on' : 'off'} (round ${round + 1} of ${o.rounds})`);
        const store = fresh();
        try {
          const kafka = relay ? settingsFor(broker.brokers) : undefined;
          if (kafka) await ensureTopics([broker.brokers], Object.values(kafka.topics), 'bench');
          const watch = watchRelay();
          const result = await runLateness(store, { ...o.lateness, kafka, label: 'relay', onNode: watch.onNode });
          const raw = result.raw as { lateness: { handlerStartMs: Record<string, number> }; eventLoopDelayMs: object };
          const entry: (typeof runs)[number] = {
            relay,
            lateness: raw.lateness.handlerStartMs,
            eventLoopDelayMs: raw.eventLoopDelayMs,
          };
          if (kafka) {
            entry.delay = roundAll(distribution(watch.delays())) as unknown as Record<string, number>;
            entry.events = { published: watch.published(), tasks: o.lateness.count, delayByType: watch.byType() };
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

/**
 * Watches a node's relay: per event, state change (its time in the store) → acknowledged by the
 * broker, i.e. on the topic. Read in the process, from the relay's own `published` events, so no
 * consumer shares the measured event loop.
 */
function watchRelay() {
  const delays = new Map<string, number[]>();
  let published = 0;
  return {
    onNode(node: Punctual) {
      node.eventRelay?.on('published', ({ events, ackedAt }) => {
        published += events.length;
        for (const event of events) {
          const list = delays.get(event.type) ?? [];
          list.push(ackedAt - event.at);
          delays.set(event.type, list);
        }
      });
    },
    published: () => published,
    // Without the creation burst: those tasks are created the moment the node starts, before its
    // relay has checked the topics and taken its lease (kept per type in the raw JSON).
    delays: () => [...delays].flatMap(([type, list]) => (type === 'created' ? [] : list)),
    byType: () => Object.fromEntries([...delays].map(([type, list]) => [type, roundAll(distribution(list))])),
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
    relay.on('published', ({ events }) => {
      published += events.length;
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

function report(runs: RunFigures[], drain: Awaited<ReturnType<typeof measureDrain>>, o: RelayOptions): ScenarioResult {
  const series = (relay: boolean, key: string) =>
    runs
      .filter((r) => r.relay === relay)
      .map((r) => fmtMs(r.lateness[key] ?? Number.NaN))
      .join(', ');
  const on = runs.filter((r) => r.delay);
  const loop = (relay: boolean) =>
    runs
      .filter((r) => r.relay === relay)
      .map((r) => fmtMs((r.eventLoopDelayMs as { p99Ms: number }).p99Ms))
      .join(', ');
  const rows: Row[] = [
    { metric: 'lateness p50 (ms), relay off | on', value: `${series(false, 'p50')} | ${series(true, 'p50')}` },
    { metric: 'lateness p99 (ms), relay off | on', value: `${series(false, 'p99')} | ${series(true, 'p99')}` },
    { metric: 'lateness max (ms), relay off | on', value: `${series(false, 'max')} | ${series(true, 'max')}` },
    {
      metric: 'event-loop delay p99 (ms), relay off | on',
      value: `${loop(false)} | ${loop(true)}`,
    },
    {
      metric: 'state change → acked on the topic p50 / p99 (ms, after start)',
      value: on.map((r) => `${fmtMs(r.delay?.p50 ?? Number.NaN)} / ${fmtMs(r.delay?.p99 ?? Number.NaN)}`).join(', '),
    },
    {
      metric: 'events published during the run',
      value: on.map((r) => fmtInt(r.events?.published ?? 0)).join(', '),
      target: `${fmtInt(o.lateness.count * 3)} each`,
      pass: on.every((r) => (r.events?.published ?? 0) >= o.lateness.count * 3),
    },
    {
      metric: 'relay drain (events/s)',
      value: `${fmtInt(drain.eventsPerSec)} (${fmtInt(drain.published)} in ${fmtInt(drain.elapsedMs)} ms)`,
    },
  ];
  return { scenario: 'relay', rows, raw: { settings: o, runs, drain } };
}
