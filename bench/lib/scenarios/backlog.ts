/**
 * backlog: does a large table of future tasks slow claims and firing? The lateness scenario runs
 * twice, on an empty store and on one holding `backlog` tasks due over the next 30 days (none of
 * them claimable during the run), and the two are compared: the goal is within 2x. Both stores
 * are settled first (FreshStore.settle), so that the comparison is of table size, not of the
 * database still flushing a bulk load of a million rows.
 */
import type { NewTask } from '../../../src/core/task.ts';
import type { FreshStore } from '../env.ts';
import type { Row, ScenarioResult } from '../report.ts';
import { fmtInt, fmtMs, note, progress, round } from '../stats.ts';
import { newTask } from '../tasks.ts';
import { type LatenessOptions, runLateness } from './lateness.ts';

export interface BacklogOptions {
  backlog: number;
  insertBatch: number;
  lateness: LatenessOptions;
}

const DAY_MS = 24 * 3600 * 1000;
const WITHIN = 2;

/** Fills the store with future tasks through taskCreate (two batches in flight). */
async function fill(fresh: FreshStore, o: BacklogOptions): Promise<number> {
  const store = await fresh.open();
  const started = performance.now();
  const base = Date.now() + 3600 * 1000;
  let next = 0;
  const stopProgress = progress('backlog fill', () => `${fmtInt(next)}/${fmtInt(o.backlog)} inserted`, 10_000);
  const writer = async () => {
    while (next < o.backlog) {
      const first = next;
      next = Math.min(o.backlog, first + o.insertBatch);
      const batch: NewTask[] = [];
      for (let i = first; i < next; i++) batch.push(newTask(base + Math.floor(Math.random() * 30 * DAY_MS), i));
      await store.taskCreate({ tasks: batch, now: Date.now() });
    }
  };
  try {
    await Promise.all([writer(), writer()]);
  } finally {
    stopProgress();
    await store.close();
  }
  const ms = performance.now() - started;
  note(`  inserted ${fmtInt(o.backlog)} future tasks in ${(ms / 1000).toFixed(1)} s`);
  return ms;
}

type LatenessRaw = {
  lateness: { handlerStartMs: { p50: number; p99: number; max: number } };
  storeOps: Record<string, { p50Ms: number; p99Ms: number; maxMs: number } | undefined>;
  missed: number;
  duplicates: number;
};

export async function runBacklog(nextStore: () => FreshStore, o: BacklogOptions): Promise<ScenarioResult> {
  const measure = async (backlog: boolean) => {
    const fresh = nextStore();
    try {
      const fillMs = backlog ? await fill(fresh, o) : 0;
      await fresh.settle(); // both runs alike: measured on a settled table, not mid-way through flushing a bulk load
      note(`  lateness on ${backlog ? `a ${fmtInt(o.backlog)}-task backlog` : 'an empty store'}`);
      const result = await runLateness(fresh, o.lateness);
      return { fillMs, raw: result.raw as unknown as LatenessRaw, rows: result.rows };
    } finally {
      await fresh.dispose();
    }
  };
  const empty = await measure(false);
  const full = await measure(true);

  const compare = (metric: string, read: (r: LatenessRaw) => number | undefined): Row => {
    const a = read(empty.raw) ?? Number.NaN;
    const b = read(full.raw) ?? Number.NaN;
    const ratio = b / a;
    return {
      metric,
      value: `${fmtMs(a)} -> ${fmtMs(b)} (x${ratio.toFixed(2)})`,
      target: `<= ${WITHIN}x`,
      // Sub-millisecond figures double on noise alone: within 1 ms counts as within.
      pass: ratio <= WITHIN || b - a <= 1,
    };
  };
  const rows: Row[] = [
    {
      metric: 'missed / duplicates (empty, backlog)',
      value: `${empty.raw.missed}/${empty.raw.duplicates}, ${full.raw.missed}/${full.raw.duplicates}`,
      target: '0',
      pass: empty.raw.missed + empty.raw.duplicates + full.raw.missed + full.raw.duplicates === 0,
    },
    compare('claim call p50 (ms), empty -> backlog', (r) => r.storeOps.taskClaimDue?.p50Ms),
    compare('claim call p99 (ms)', (r) => r.storeOps.taskClaimDue?.p99Ms),
    compare('lateness p50 (ms)', (r) => r.lateness.handlerStartMs.p50),
    compare('lateness p99 (ms)', (r) => r.lateness.handlerStartMs.p99),
    compare('lateness max (ms)', (r) => r.lateness.handlerStartMs.max),
    { metric: 'backlog insert tasks/s', value: fmtInt(round((o.backlog / full.fillMs) * 1000, 0)) },
  ];
  return {
    scenario: 'backlog',
    rows,
    raw: { settings: { backlog: o.backlog, insertBatch: o.insertBatch }, empty: empty.raw, backlog: full.raw },
  };
}
