/**
 * throughput: a backlog of tasks all due now, inserted before the dispatcher starts, run by a
 * no-op in-process handler. Measures start() → every outcome written (counted from 'flushed').
 * Runs the dispatcher defaults first, then the other settings in `configs`, each on a fresh store.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createPunctual, type DispatchSettings } from '../../../src/punctual.ts';
import type { FreshStore } from '../env.ts';
import type { Row, ScenarioResult } from '../report.ts';
import { benchLogger, fmtInt, fmtMs, note, progress, round, roundAll, sleep } from '../stats.ts';
import { NOOP, newTask } from '../tasks.ts';
import { timedStore } from '../timed-store.ts';

export interface ThroughputConfig {
  label: string;
  settings: DispatchSettings;
}

export interface ThroughputOptions {
  count: number;
  insertBatch: number;
  configs: ThroughputConfig[];
  /** Give up on one config after this long. */
  timeoutMs: number;
}

export const THROUGHPUT_TARGET = 10_000;

export const DEFAULT_CONFIGS: ThroughputConfig[] = [
  { label: 'defaults', settings: {} },
  { label: 'concurrency 1000', settings: { concurrency: 1_000 } },
  { label: 'claimBatchSize 5000, maxHeld 20000', settings: { claimBatchSize: 5_000, maxHeld: 20_000 } },
  { label: 'completionDelayMs 20', settings: { completionDelayMs: 20 } },
];

async function runOne(fresh: FreshStore, o: ThroughputOptions, config: ThroughputConfig) {
  const { store, stats, busyMs } = timedStore(await fresh.open());
  const insertStarted = performance.now();
  const due = Date.now();
  for (let first = 0; first < o.count; first += o.insertBatch) {
    const batch = [];
    for (let i = first; i < Math.min(o.count, first + o.insertBatch); i++) batch.push(newTask(due, i));
    await store.taskCreate({ tasks: batch, now: Date.now() });
  }
  const insertMs = performance.now() - insertStarted;
  note(`  [${config.label}] inserted ${fmtInt(o.count)} due tasks in ${(insertMs / 1000).toFixed(1)} s`);

  const logger = benchLogger(`throughput ${config.label}`);
  const p = createPunctual({ store, logger, ...config.settings });
  let ran = 0;
  let succeeded = 0;
  let other = 0;
  let stale = 0;
  let firstStartMs = Number.NaN;
  let lastStartMs = 0;
  p.handle(NOOP, () => {
    ran++;
  });
  p.dispatcher.on('started', () => {
    const t = performance.now();
    if (Number.isNaN(firstStartMs)) firstStartMs = t;
    lastStartMs = t;
  });
  p.dispatcher.on('flushed', (batch) => {
    for (const outcome of batch.outcomes) {
      if (outcome.kind === 'succeeded') succeeded++;
      else other++;
    }
    stale += batch.stale;
  });
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const stopProgress = progress(
    `throughput ${config.label}`,
    () => `${fmtInt(succeeded)}/${fmtInt(o.count)} succeeded`,
  );
  const busyBefore = busyMs();
  const started = performance.now();
  await p.start();
  const deadline = started + o.timeoutMs;
  // Poll on a short timer: the measured end is the flush that brought the count to `count`.
  let endedMs = Number.NaN;
  p.dispatcher.on('flushed', () => {
    if (succeeded + other >= o.count && Number.isNaN(endedMs)) endedMs = performance.now();
  });
  while (succeeded + other < o.count && performance.now() < deadline) await sleep(20);
  stopProgress();
  loop.disable();
  const elapsedMs = (Number.isNaN(endedMs) ? performance.now() : endedMs) - started;
  const storeBusyShare = (busyMs() - busyBefore) / (performance.now() - started);
  await p.stop({ graceMs: 5_000 });
  const counts = await store.taskCountByState();
  await store.close();
  const completed = succeeded === o.count && counts.succeeded === o.count;
  return {
    label: config.label,
    settings: config.settings,
    completed,
    tasksPerSec: round((succeeded / elapsedMs) * 1000, 0),
    elapsedMs: round(elapsedMs, 1),
    firstStartAfterMs: round(firstStartMs - started, 1),
    lastStartAfterMs: round(lastStartMs - started, 1),
    insertMs: round(insertMs, 1),
    insertTasksPerSec: round((o.count / insertMs) * 1000, 0),
    handlerRuns: ran,
    succeededFlushed: succeeded,
    otherOutcomes: other,
    staleCompletions: stale,
    loggedProblems: logger.problems(),
    countsByState: counts,
    storeBusyShare: round(storeBusyShare),
    eventLoopDelayMs: roundAll({ p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 }),
    storeOps: stats(),
  };
}

export async function runThroughput(nextStore: () => FreshStore, o: ThroughputOptions): Promise<ScenarioResult> {
  const runs = [];
  for (const config of o.configs) {
    const fresh = nextStore();
    try {
      runs.push(await runOne(fresh, o, config));
    } finally {
      await fresh.dispose();
    }
  }
  const rows: Row[] = [];
  for (const run of runs) {
    const claim = run.storeOps.taskClaimDue;
    const complete = run.storeOps.taskComplete;
    rows.push(
      {
        metric: `tasks/s [${run.label}]`,
        value: fmtInt(run.tasksPerSec),
        target: `>= ${fmtInt(THROUGHPUT_TARGET)}`,
        pass: run.completed && run.tasksPerSec >= THROUGHPUT_TARGET,
      },
      {
        metric: '  succeeded in store / handler runs',
        value: `${fmtInt(run.countsByState.succeeded)} / ${fmtInt(run.handlerRuns)}`,
      },
      {
        metric: '  store call µs per task: claim + complete',
        value: `${fmtMs(claim?.usPerRow ?? Number.NaN)} + ${fmtMs(complete?.usPerRow ?? Number.NaN)}`,
      },
      {
        metric: '  store busy (a call in flight), % of run',
        value: `${(run.storeBusyShare * 100).toFixed(0)}%`,
      },
    );
  }
  const setup = runs[0];
  if (setup) {
    rows.push({ metric: 'backlog insert (store.taskCreate) tasks/s', value: fmtInt(setup.insertTasksPerSec) });
  }
  return {
    scenario: 'throughput',
    rows,
    raw: { settings: { count: o.count, insertBatch: o.insertBatch }, runs },
  };
}
