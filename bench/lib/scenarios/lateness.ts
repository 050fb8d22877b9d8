/**
 * lateness: tasks due at a steady rate (one per millisecond), created ahead of time through the
 * library path the API uses (createTasks, batches of 1,000, dispatcher already running), run by a
 * no-op in-process handler. Lateness = handler start − scheduled time.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { KafkaSettings } from '../../../src/kafka/settings.ts';
import { createPunctual, type DispatchSettings, type Punctual } from '../../../src/punctual.ts';
import type { FreshStore } from '../env.ts';
import type { ScenarioResult } from '../report.ts';
import { benchLogger, distribution, fmtInt, fmtMs, note, progress, round, roundAll, sleep } from '../stats.ts';
import { NOOP, newTask } from '../tasks.ts';
import { timedStore } from '../timed-store.ts';

export interface LatenessOptions {
  count: number;
  /** Tasks due per second. */
  ratePerSec: number;
  /** How far ahead of now the first task is due. */
  leadMs: number;
  batchSize: number;
  /** Dispatcher settings (default: none, the dispatcher's defaults). */
  settings?: DispatchSettings;
  /** Kafka settings: relay lifecycle events while the tasks fire (default: no Kafka). */
  kafka?: KafkaSettings;
  /** Scenario name in the report (default `lateness`). */
  label?: string;
  /** Called with the node before it starts (to watch it). */
  onNode?: (node: Punctual) => void;
}

export const LATENESS_TARGETS = { p99Ms: 10, maxMs: 50 };

/**
 * Epoch ms with sub-ms resolution, aligned to Date.now() at a millisecond boundary. Calibrated a
 * few times, keeping the largest offset: a late observation of the boundary (a first call's lazy
 * setup, a preemption) can only make the offset smaller.
 */
function hiresClock(): () => number {
  const hires = () => performance.timeOrigin + performance.now();
  let offset = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < 5; i++) {
    const start = Date.now();
    let tick = Date.now();
    while (tick === start) tick = Date.now();
    offset = Math.max(offset, tick - hires());
  }
  return () => hires() + offset;
}

export async function runLateness(fresh: FreshStore, o: LatenessOptions): Promise<ScenarioResult> {
  const { store, stats, busyMs } = timedStore(await fresh.open());
  const logger = benchLogger('lateness');
  // As `punctual serve` does: the relay gets the store's URL, to run on a thread of its own.
  const p = createPunctual({ store, logger, ...o.settings, kafka: o.kafka, storeUrl: fresh.url });
  const now = hiresClock();
  const runs = new Map<string, number>();
  const handlerLateness: number[] = [];
  const dispatcherLateness: number[] = [];
  let succeeded = 0;
  let stale = 0;
  p.handle(NOOP, (task) => {
    handlerLateness.push(now() - task.scheduledAt);
    runs.set(task.id, (runs.get(task.id) ?? 0) + 1);
  });
  p.dispatcher.on('started', ({ latenessMs }) => dispatcherLateness.push(latenessMs));
  p.dispatcher.on('flushed', (batch) => {
    for (const outcome of batch.outcomes) if (outcome.kind === 'succeeded') succeeded++;
    stale += batch.stale;
  });

  o.onNode?.(p);
  await p.start();
  const intervalMs = 1000 / o.ratePerSec;
  const t0 = Date.now() + o.leadMs;
  const ids: string[] = [];
  let minMarginMs = Number.POSITIVE_INFINITY;
  const createMs: number[] = [];
  for (let first = 0; first < o.count; first += o.batchSize) {
    const batch = [];
    for (let i = first; i < Math.min(o.count, first + o.batchSize); i++) {
      const task = newTask(t0 + Math.floor(i * intervalMs), i);
      ids.push(task.id);
      batch.push(task);
    }
    const started = performance.now();
    const results = await p.createTasks(batch);
    createMs.push(performance.now() - started);
    if (results.some((r) => r.status !== 'created')) throw new Error('lateness: a create did not return "created"');
    minMarginMs = Math.min(minMarginMs, (batch[0]?.scheduledAt ?? 0) - Date.now());
  }
  const headroomMs = t0 - Date.now();
  note(`  created ${fmtInt(o.count)} tasks; the first is due in ${headroomMs} ms`);

  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const busyBefore = busyMs();
  const windowStart = performance.now();
  const lastDue = t0 + Math.floor((o.count - 1) * intervalMs);
  const deadline = lastDue + 30_000;
  const stopProgress = progress('lateness', () => `${fmtInt(handlerLateness.length)}/${fmtInt(o.count)} started`);
  while ((handlerLateness.length < o.count || succeeded < o.count) && Date.now() < deadline) await sleep(50);
  // A little longer, to catch a duplicate run of the last tasks.
  await sleep(500);
  const busyShare = (busyMs() - busyBefore) / (performance.now() - windowStart);
  stopProgress();
  loop.disable();
  await p.stop({ graceMs: 5_000 });
  const counts = await store.taskCountByState();
  await store.close();

  let missed = 0;
  let duplicates = 0;
  for (const id of ids) {
    const n = runs.get(id) ?? 0;
    if (n === 0) missed++;
    else duplicates += n - 1;
  }
  const expected = new Set(ids);
  const unknown = [...runs.keys()].filter((id) => !expected.has(id)).length;
  const hires = distribution(handlerLateness);
  const whole = distribution(dispatcherLateness);
  const loopDelay = {
    p50Ms: loop.percentile(50) / 1e6,
    p99Ms: loop.percentile(99) / 1e6,
    maxMs: loop.max / 1e6,
  };
  const storeOps = stats();
  const row = (label: string, key: 'p50' | 'p90' | 'p99' | 'p999' | 'max', target?: number) => ({
    metric: `lateness ${label} (ms)`,
    value: `${fmtMs(hires[key])}  [${whole[key]}]`,
    ...(target === undefined ? {} : { target: `<= ${target}`, pass: hires[key] <= target }),
  });
  return {
    scenario: o.label ?? 'lateness',
    rows: [
      {
        metric: 'tasks ran / expected',
        value: `${fmtInt(runs.size)} / ${fmtInt(o.count)}`,
        target: 'all, once',
        pass: missed === 0 && duplicates === 0,
      },
      { metric: 'missed / duplicates', value: `${missed} / ${duplicates}` },
      {
        metric: 'succeeded in store',
        value: fmtInt(counts.succeeded),
        target: fmtInt(o.count),
        pass: counts.succeeded === o.count,
      },
      {
        metric: 'all created before the first was due',
        value: `${headroomMs >= 0 ? 'yes' : 'NO'} (${fmtInt(headroomMs)} ms)`,
        target: 'yes',
        pass: headroomMs >= 0,
      },
      row('p50', 'p50'),
      row('p90', 'p90'),
      row('p99', 'p99', LATENESS_TARGETS.p99Ms),
      row('p99.9', 'p999'),
      row('max', 'max', LATENESS_TARGETS.maxMs),
      { metric: 'event-loop delay p99 / max (ms)', value: `${fmtMs(loopDelay.p99Ms)} / ${fmtMs(loopDelay.maxMs)}` },
      { metric: 'store busy (a call in flight), % of run', value: `${(busyShare * 100).toFixed(0)}%` },
      {
        metric: 'claim calls: p99 / max (ms)',
        value: `${fmtMs(storeOps.taskClaimDue?.p99Ms ?? Number.NaN)} / ${fmtMs(storeOps.taskClaimDue?.maxMs ?? Number.NaN)}`,
      },
      {
        metric: 'complete calls: p99 / max (ms)',
        value: `${fmtMs(storeOps.taskComplete?.p99Ms ?? Number.NaN)} / ${fmtMs(storeOps.taskComplete?.maxMs ?? Number.NaN)}`,
      },
    ],
    raw: {
      settings: {
        ...o,
        settings: undefined,
        onNode: undefined,
        kafka: o.kafka?.topics,
        dispatcher: o.settings ?? 'defaults',
      },
      created: {
        batches: createMs.length,
        batchMs: roundAll(distribution(createMs)),
        minMarginMs: round(minMarginMs),
        headroomMs,
      },
      lateness: {
        handlerStartMs: roundAll(hires),
        dispatcherStartedEventMs: roundAll(whole),
        note: 'handlerStartMs: sub-ms clock at handler entry; dispatcherStartedEventMs: the started event (whole ms)',
      },
      ran: runs.size,
      missed,
      duplicates,
      unknown,
      succeededFlushed: succeeded,
      staleCompletions: stale,
      loggedProblems: logger.problems(),
      countsByState: counts,
      eventLoopDelayMs: roundAll(loopDelay),
      storeBusyShare: round(busyShare),
      storeOps,
    },
  };
}
