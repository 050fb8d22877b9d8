/**
 * The four scenarios (../README.md): ingest, throughput, punctuality, recovery. Each runs in a
 * fresh schema (set up first, untimed) and derives its figures from the record file.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { distribution, sleep } from '../../lib/stats.ts';
import { type HarnessRequest, type Profile, runCommand, type SystemDef, startWorker, type Worker } from './harness.ts';
import { analyzeSchema, dropPgSchema } from './servers.ts';

export interface Counts {
  ingest: number;
  ingestSingleCapMs: number;
  throughput: number;
  throughputCapMs: number;
  punctuality: number;
  punctualityRate: number;
  punctualityCapMs: number;
  recovery: number;
  recoveryCapMs: number;
  recoveryKillAt: number;
  /** Batch ingest and throughput runs per system; the median is reported (this machine is noisy). */
  repeats: number;
}

export const FULL: Counts = {
  ingest: 50_000,
  ingestSingleCapMs: 30_000,
  throughput: 50_000,
  throughputCapMs: 120_000,
  punctuality: 20_000,
  punctualityRate: 1_000,
  punctualityCapMs: 60_000,
  recovery: 5_000,
  recoveryCapMs: 120_000,
  recoveryKillAt: 1_000,
  repeats: 3,
};

export const QUICK: Counts = {
  ingest: 2_000,
  ingestSingleCapMs: 10_000,
  throughput: 2_000,
  throughputCapMs: 30_000,
  punctuality: 2_000,
  punctualityRate: 500,
  punctualityCapMs: 20_000,
  recovery: 1_000,
  recoveryCapMs: 60_000,
  recoveryKillAt: 200,
  repeats: 1,
};

export const BATCH = 1_000;

export interface Context {
  postgresUrl: string;
  redisUrl?: string;
  counts: Counts;
  /** Batch-ingest rates measured by scenario a, for the punctuality lead time. */
  batchRates: Map<string, number>;
}

let schemas = 0;
const runTag = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;

interface Fresh {
  base: Omit<HarnessRequest, 'command'>;
  recordFile: string;
  analyze(): Promise<void>;
  dispose(): Promise<void>;
}

/** A fresh schema (and record file), set up untimed. */
async function fresh(ctx: Context, system: SystemDef, profile: Profile, scenario: string): Promise<Fresh> {
  const schema = `pb_${runTag}_${++schemas}_${scenario}`;
  const base: Omit<HarnessRequest, 'command'> = { system: system.name, profile, schema };
  if (system.store === 'postgres') base.postgresUrl = ctx.postgresUrl;
  if (system.store === 'redis') base.redisUrl = ctx.redisUrl;
  const dir = join(tmpdir(), 'punctual-peers');
  mkdirSync(dir, { recursive: true });
  const recordFile = join(dir, `${schema}.records`);
  await runCommand(system.family, { ...base, command: 'setup' }, 120_000);
  return {
    base,
    recordFile,
    analyze: async () => {
      if (system.store === 'postgres') await analyzeSchema(ctx.postgresUrl, schema);
    },
    async dispose() {
      rmSync(recordFile, { force: true });
      if (system.store === 'postgres') await dropPgSchema(ctx.postgresUrl, schema).catch(() => {});
      if (system.store === 'sqlite') {
        for (const suffix of ['', '-wal', '-shm']) rmSync(join(dir, `${schema}.db${suffix}`), { force: true });
      }
    },
  };
}

export interface Records {
  /** Start records (one per handler entry). */
  lines: number;
  /** First start per task index (NaN where none). */
  firstStart: Float64Array;
  due: Float64Array;
  /** Tasks with at least one start record. */
  distinct: number;
  /** Every start record's time, sorted. */
  starts: Float64Array;
  /** Completion records (written when a handler that sleeps returns) and the tasks they cover. */
  completions: number;
  distinctCompleted: number;
  /** The latest completion time (NaN when none). */
  lastEnd: number;
}

/** Parses the record file: `<i> <due> <start>` at handler entry, `<i> <due> <start> <end>` at its return. */
export function readRecords(file: string, count: number): Records {
  const firstStart = new Float64Array(count).fill(Number.NaN);
  const due = new Float64Array(count).fill(Number.NaN);
  const completed = new Uint8Array(count);
  const starts: number[] = [];
  let distinct = 0;
  let completions = 0;
  let distinctCompleted = 0;
  let lastEnd = Number.NaN;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [a, b, c, d] = line.split(' ');
    const i = Number(a);
    const start = Number(c);
    if (!Number.isInteger(i) || i < 0 || i >= count || !Number.isFinite(start)) continue;
    if (d !== undefined) {
      const end = Number(d);
      if (!Number.isFinite(end)) continue;
      completions++;
      if (completed[i] === 0) distinctCompleted++;
      completed[i] = 1;
      if (!(end <= lastEnd)) lastEnd = end;
      continue;
    }
    starts.push(start);
    if (Number.isNaN(firstStart[i]!)) {
      distinct++;
      firstStart[i] = start;
      due[i] = Number(b);
    } else if (start < firstStart[i]!) firstStart[i] = start;
  }
  return {
    lines: starts.length,
    firstStart,
    due,
    distinct,
    starts: Float64Array.from(starts).sort(),
    completions,
    distinctCompleted,
    lastEnd,
  };
}

/** Lines in the record file so far (cheap: the file only grows by whole lines). */
function countLines(file: string): number {
  if (!existsSync(file) || statSync(file).size === 0) return 0;
  const text = readFileSync(file, 'latin1');
  let n = 0;
  for (let k = text.indexOf('\n'); k >= 0; k = text.indexOf('\n', k + 1)) n++;
  return n;
}

function distinctSoFar(file: string, count: number): number {
  return readRecords(file, count).distinct;
}

type Log = (message: string) => void;

function ticker(log: Log, label: string, read: () => string, everyMs = 5_000): () => void {
  const started = performance.now();
  const timer = setInterval(
    () => log(`  [${label}] ${((performance.now() - started) / 1000).toFixed(0)} s ${read()}`),
    everyMs,
  );
  timer.unref();
  return () => clearInterval(timer);
}

/** Waits until `distinct` reaches `count` or `until` (epoch ms); polls every `everyMs`. */
async function waitForAll(file: string, count: number, until: number, everyMs = 250): Promise<number> {
  let lines = 0;
  return waitFor(
    () => {
      const now = countLines(file);
      const all = now >= count && now !== lines && distinctSoFar(file, count) >= count;
      lines = now;
      return all;
    },
    until,
    everyMs,
  );
}

/** `run` up to `times` times, stopping early when `again` says no. */
async function repeated<T>(
  times: number,
  run: () => Promise<T>,
  again: (last: T) => boolean = () => true,
): Promise<T[]> {
  const out: T[] = [];
  for (let k = 0; k < times; k++) {
    const last = await run();
    out.push(last);
    if (!again(last)) break;
  }
  return out;
}

/** The run with the median value (NaN counts as the lowest). */
function medianBy<T>(runs: T[], value: (run: T) => number): T {
  const key = (run: T) => (Number.isNaN(value(run)) ? Number.NEGATIVE_INFINITY : value(run));
  const sorted = [...runs].sort((x, y) => key(x) - key(y));
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** Polls `done` until it holds (returns the time) or `until` passes (returns NaN). */
async function waitFor(done: () => boolean, until: number, everyMs: number): Promise<number> {
  while (Date.now() < until) {
    if (done()) return Date.now();
    await sleep(everyMs);
  }
  return Number.NaN;
}

// a) ingest ---------------------------------------------------------------------------------------

export async function ingest(ctx: Context, system: SystemDef, profile: Profile, log: Log) {
  const { counts } = ctx;
  const firstDueAt = Date.now() + 3_600_000;
  const out: Record<string, unknown> = {};
  {
    const runs = await repeated(counts.repeats, async () => {
      const f = await fresh(ctx, system, profile, 'ib');
      try {
        const { done } = await runCommand(
          system.family,
          {
            ...f.base,
            command: 'ingest',
            count: counts.ingest,
            api: 'batch',
            batchSize: BATCH,
            firstDueAt,
            intervalMs: 0,
          },
          600_000,
        );
        const ms = Number(done?.ms);
        log(`  batch: ${counts.ingest} in ${ms.toFixed(0)} ms`);
        return { count: counts.ingest, ms, perSecond: (counts.ingest / ms) * 1000 };
      } finally {
        await f.dispose();
      }
    });
    const median = medianBy(runs, (r) => r.perSecond);
    out.batch = { ...median, runs: runs.map((r) => r.perSecond) };
    ctx.batchRates.set(`${system.name}/${profile}`, median.perSecond);
  }
  {
    // single: a short probe gives the rate, then a run sized to fill the cap.
    const f = await fresh(ctx, system, profile, 'is');
    try {
      const probeCount = Math.min(300, counts.ingest);
      const probe = await runCommand(
        system.family,
        { ...f.base, command: 'ingest', count: probeCount, api: 'single', firstDueAt, intervalMs: 0 },
        counts.ingestSingleCapMs * 2,
      );
      const probeRate = probe.done ? (probeCount / Number(probe.done.ms)) * 1000 : 10;
      const count = Math.max(
        probeCount,
        Math.min(counts.ingest, Math.floor((probeRate * counts.ingestSingleCapMs * 0.9) / 1000)),
      );
      const { done, timedOut } = await runCommand(
        system.family,
        { ...f.base, command: 'ingest', count, api: 'single', firstDueAt: firstDueAt + 1, intervalMs: 0 },
        counts.ingestSingleCapMs * 2 + 10_000,
      );
      const ms = Number(done?.ms);
      out.single = {
        count: timedOut ? 0 : count,
        of: counts.ingest,
        ms,
        perSecond: timedOut ? Number.NaN : (count / ms) * 1000,
        capMs: counts.ingestSingleCapMs,
        probe: { count: probeCount, perSecond: probeRate },
        timedOut,
      };
      log(`  single: ${count} in ${ms.toFixed(0)} ms`);
    } finally {
      await f.dispose();
    }
  }
  return out;
}

/** Loads `count` tasks due now, in batches (the untimed set-up of scenarios b and d). */
async function enqueueDueNow(system: SystemDef, f: Fresh, count: number, leaseMs?: number): Promise<void> {
  const request: HarnessRequest = {
    ...f.base,
    command: 'enqueue',
    count,
    api: 'batch',
    batchSize: BATCH,
    firstDueAt: Date.now(),
    intervalMs: 0,
  };
  if (leaseMs !== undefined) request.leaseMs = leaseMs;
  await runCommand(system.family, request, 600_000);
}

// b) throughput -----------------------------------------------------------------------------------

export async function throughput(ctx: Context, system: SystemDef, profile: Profile, log: Log) {
  // A run that hits the cap is not repeated: the cap, not the machine, set its figure.
  const runs = await repeated(
    ctx.counts.repeats,
    () => throughputOnce(ctx, system, profile, log),
    (run) => run.complete,
  );
  return { ...medianBy(runs, (r) => r.perSecond), runs: runs.map((r) => r.perSecond) };
}

async function throughputOnce(ctx: Context, system: SystemDef, profile: Profile, log: Log) {
  const { counts } = ctx;
  const N = counts.throughput;
  const f = await fresh(ctx, system, profile, 'tp');
  let worker: Worker | undefined;
  try {
    await enqueueDueNow(system, f, N);
    await f.analyze();
    const started = Date.now();
    worker = await startWorker(system.family, { ...f.base, command: 'work', recordFile: f.recordFile });
    const stopTicker = ticker(log, `${system.name}/${profile} throughput`, () => `${countLines(f.recordFile)}/${N}`);
    const doneAt = await waitForAll(f.recordFile, N, started + counts.throughputCapMs);
    stopTicker();
    await worker.stop();
    const r = readRecords(f.recordFile, N);
    const firsts = Float64Array.from(r.firstStart.filter((s) => !Number.isNaN(s))).sort();
    const n = firsts.length;
    const lo = firsts[Math.floor(n * 0.1)] ?? Number.NaN;
    const hi = firsts[Math.max(0, Math.ceil(n * 0.9) - 1)] ?? Number.NaN;
    const span = Math.ceil(n * 0.9) - 1 - Math.floor(n * 0.1);
    const perSecond = hi > lo ? (span / (hi - lo)) * 1000 : Number.NaN;
    log(`  ${Math.round(perSecond)} tasks/s`);
    return {
      count: N,
      distinct: r.distinct,
      records: r.lines,
      duplicates: r.lines - r.distinct,
      complete: !Number.isNaN(doneAt),
      capMs: counts.throughputCapMs,
      perSecond,
      firstToLastMs: n > 0 ? firsts[n - 1]! - firsts[0]! : Number.NaN,
      workerStartToFirstMs: n > 0 ? firsts[0]! - started : Number.NaN,
    };
  } finally {
    await worker?.stop();
    await f.dispose();
  }
}

// c) punctuality ----------------------------------------------------------------------------------

/** 500 evenly spaced quantiles of the lateness distribution, for the CDF plot. */
function quantiles(sorted: Float64Array, points = 500): number[] {
  if (sorted.length === 0) return [];
  const out: number[] = [];
  for (let k = 0; k < points; k++) {
    out.push(
      Math.round(sorted[Math.min(sorted.length - 1, Math.floor((k / (points - 1)) * (sorted.length - 1)))]! * 1000) /
        1000,
    );
  }
  return out;
}

export async function punctuality(ctx: Context, system: SystemDef, profile: Profile, log: Log) {
  const { counts } = ctx;
  const N = counts.punctuality;
  const intervalMs = 1000 / counts.punctualityRate;
  const f = await fresh(ctx, system, profile, 'pu');
  let worker: Worker | undefined;
  try {
    worker = await startWorker(system.family, { ...f.base, command: 'work', recordFile: f.recordFile });
    const rate = ctx.batchRates.get(`${system.name}/${profile}`);
    const ingestMs = rate ? (N / rate) * 1000 : 5_000;
    const leadMs = Math.max(10_000, ingestMs * 1.5 + 3_000);
    const firstDueAt = Date.now() + leadMs;
    await runCommand(
      system.family,
      { ...f.base, command: 'enqueue', count: N, api: 'batch', batchSize: BATCH, firstDueAt, intervalMs },
      600_000,
    );
    const enqueuedAt = Date.now();
    await f.analyze();
    const lastDue = firstDueAt + (N - 1) * intervalMs;
    const stopTicker = ticker(log, `${system.name}/${profile} punctuality`, () => `${countLines(f.recordFile)}/${N}`);
    const doneAt = await waitForAll(f.recordFile, N, lastDue + counts.punctualityCapMs);
    stopTicker();
    await worker.stop();
    const r = readRecords(f.recordFile, N);
    const lateness: number[] = [];
    for (let i = 0; i < N; i++) {
      if (!Number.isNaN(r.firstStart[i]!)) lateness.push(r.firstStart[i]! - r.due[i]!);
    }
    const sorted = Float64Array.from(lateness).sort();
    return {
      count: N,
      ratePerSecond: counts.punctualityRate,
      leadMs,
      enqueueFinishedBeforeFirstDue: enqueuedAt <= firstDueAt,
      enqueueFinishedMsBeforeFirstDue: firstDueAt - enqueuedAt,
      complete: !Number.isNaN(doneAt),
      capAfterLastDueMs: counts.punctualityCapMs,
      missed: N - r.distinct,
      duplicates: r.lines - r.distinct,
      early: lateness.filter((l) => l < 0).length,
      lateness: distribution(lateness),
      latenessQuantiles: quantiles(sorted),
    };
  } finally {
    await worker?.stop();
    await f.dispose();
  }
}

// d) recovery -------------------------------------------------------------------------------------

export async function recovery(ctx: Context, system: SystemDef, profile: Profile, log: Log) {
  const { counts } = ctx;
  const N = counts.recovery;
  const f = await fresh(ctx, system, profile, 're');
  const leaseMs = profile === 'tuned' ? 5_000 : undefined;
  const workRequest: HarnessRequest = {
    ...f.base,
    command: 'work',
    recordFile: f.recordFile,
    concurrency: 1_000,
    handlerMs: 1_000,
    ...(leaseMs === undefined ? {} : { leaseMs }),
  };
  let worker: Worker | undefined;
  try {
    await enqueueDueNow(system, f, N, leaseMs);
    await f.analyze();
    worker = await startWorker(system.family, workRequest);
    const startedAt = Date.now();
    while (readRecords(f.recordFile, N).lines < counts.recoveryKillAt) {
      if (Date.now() - startedAt > counts.recoveryCapMs)
        throw new Error(`fewer than ${counts.recoveryKillAt} records in the cap`);
      await sleep(20);
    }
    worker.kill();
    const killedAt = performance.timeOrigin + performance.now();
    await worker.exited;
    const atKill = readRecords(f.recordFile, N);
    log(`  killed with ${atKill.distinct - atKill.distinctCompleted} tasks in flight; restarting`);
    worker = await startWorker(system.family, workRequest);
    const stopTicker = ticker(
      log,
      `${system.name}/${profile} recovery`,
      () => `${readRecords(f.recordFile, N).distinctCompleted}/${N} completed`,
    );
    const doneAt = await waitFor(
      () => readRecords(f.recordFile, N).distinctCompleted >= N,
      killedAt + counts.recoveryCapMs,
      100,
    );
    stopTicker();
    await worker.stop();
    const r = readRecords(f.recordFile, N);
    // A task is done when its handler has returned: a task that was running at the kill has a
    // start record from the first worker but must run again (at least once) to be done.
    const recovered = r.distinctCompleted === N;
    return {
      count: N,
      leaseMs: leaseMs ?? null,
      recordsAtKill: atKill.lines,
      inFlightAtKill: atKill.distinct - atKill.distinctCompleted,
      completedAtKill: atKill.distinctCompleted,
      recovered,
      recoveryMs: recovered ? r.lastEnd - killedAt : Number.NaN,
      observedDoneMs: Number.isNaN(doneAt) ? Number.NaN : doneAt - killedAt,
      capMs: counts.recoveryCapMs,
      lost: N - r.distinctCompleted,
      // Ran to completion more than once; re-running a task cut off by the kill is not a duplicate.
      duplicates: r.completions - r.distinctCompleted,
      // Started more than once (expected for the tasks in flight at the kill).
      reruns: r.lines - r.distinct,
      records: r.lines,
    };
  } finally {
    await worker?.stop();
    await f.dispose();
  }
}
