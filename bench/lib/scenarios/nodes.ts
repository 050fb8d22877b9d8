/**
 * nodes: execution throughput with 1, 2 and 3 `punctual serve` processes on one store. A backlog
 * of no-op tasks due now is inserted before the nodes start; they are launched together, and the
 * rate is read from the store's count of succeeded tasks between 10% and 90% of the backlog, so
 * that start-up (the nodes do not boot at the same instant) and the tail stay out of the figure.
 */
import { resolve } from 'node:path';
import type { ServiceProcess } from '../../../test/helpers/service-process.ts';
import { startService } from '../../../test/helpers/service-process.ts';
import type { FreshStore } from '../env.ts';
import { trackChild } from '../env.ts';
import type { Row, ScenarioResult } from '../report.ts';
import { stopService } from '../service.ts';
import { fmtInt, note, round, sleep } from '../stats.ts';
import { newTask } from '../tasks.ts';

const HANDLERS = resolve(import.meta.dirname, '../noop-handlers.js');
const SAMPLE_EVERY_MS = 250;

export interface NodesOptions {
  count: number;
  nodeCounts: number[];
  insertBatch: number;
  timeoutMs: number;
}

interface Sample {
  atMs: number;
  succeeded: number;
}

/** When the count first reached `target`, interpolated between the two samples around it. */
function timeReaching(samples: Sample[], target: number): number {
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1] as Sample;
    const b = samples[i] as Sample;
    if (b.succeeded >= target) {
      if (b.succeeded === a.succeeded) return b.atMs;
      return a.atMs + ((target - a.succeeded) / (b.succeeded - a.succeeded)) * (b.atMs - a.atMs);
    }
  }
  return Number.NaN;
}

async function runWithNodes(fresh: FreshStore, o: NodesOptions, nodes: number) {
  const store = await fresh.open();
  const due = Date.now();
  for (let first = 0; first < o.count; first += o.insertBatch) {
    const batch = [];
    for (let i = first; i < Math.min(o.count, first + o.insertBatch); i++) batch.push(newTask(due, i));
    await store.taskCreate({ tasks: batch, now: Date.now() });
  }
  const label = `${nodes} node${nodes > 1 ? 's' : ''}`;
  note(`  [${label}] inserted ${fmtInt(o.count)} due tasks; starting the nodes`);

  const services: ServiceProcess[] = [];
  const samples: Sample[] = [];
  const started = performance.now();
  try {
    const launches = Array.from({ length: nodes }, () =>
      startService({ store: fresh.url, handlers: HANDLERS }).then((service) => {
        trackChild(service.pid);
        services.push(service);
      }),
    );
    const deadline = started + o.timeoutMs;
    let succeeded = 0;
    let lastNote = 0;
    while (succeeded < o.count && performance.now() < deadline) {
      succeeded = (await store.taskCountByState()).succeeded;
      const atMs = performance.now() - started;
      samples.push({ atMs, succeeded });
      if (atMs - lastNote > 5_000) {
        note(`  [${label}] ${fmtInt(succeeded)}/${fmtInt(o.count)} succeeded`);
        lastNote = atMs;
      }
      await sleep(SAMPLE_EVERY_MS);
    }
    await Promise.all(launches);
  } finally {
    await Promise.all(services.map((service) => stopService(service)));
  }
  const counts = await store.taskCountByState();
  await store.close();
  const from = timeReaching(samples, o.count * 0.1);
  const to = timeReaching(samples, o.count * 0.9);
  const done = timeReaching(samples, o.count);
  return {
    nodes,
    completed: counts.succeeded === o.count,
    steadyTasksPerSec: round(((o.count * 0.8) / (to - from)) * 1000, 0),
    allDoneAfterMs: round(done, 0),
    countsByState: counts,
    samples: samples.map((s) => [round(s.atMs, 0), s.succeeded]),
  };
}

export async function runNodes(nextStore: () => FreshStore, o: NodesOptions): Promise<ScenarioResult> {
  const runs = [];
  for (const nodes of o.nodeCounts) {
    const fresh = nextStore();
    try {
      runs.push(await runWithNodes(fresh, o, nodes));
    } finally {
      await fresh.dispose();
    }
  }
  const single = runs[0]?.steadyTasksPerSec ?? Number.NaN;
  const rows: Row[] = runs.map((run) => ({
    metric: `tasks/s with ${run.nodes} node${run.nodes > 1 ? 's' : ''} (10%..90% of the backlog)`,
    value: `${fmtInt(run.steadyTasksPerSec)}${run.nodes > 1 ? ` (x${(run.steadyTasksPerSec / single).toFixed(2)})` : ''}`,
    target: 'all succeeded',
    pass: run.completed,
  }));
  rows.push({
    metric: 'all succeeded after (s), per node count',
    value: runs.map((r) => (r.allDoneAfterMs / 1000).toFixed(1)).join(' / '),
  });
  return { scenario: 'nodes', rows, raw: { settings: o, runs } };
}
