/**
 * ingest-batch and ingest-single: the real service (`punctual serve`, child process, fresh
 * store) takes creates over loopback HTTP. The API acknowledges only after the commit, so
 * acknowledged tasks per second is tasks made durable per second. Tasks are due far in the
 * future, so the dispatcher does not run them during the measurement.
 */
import { readFileSync } from 'node:fs';
import type { FreshStore } from '../env.ts';
import { Client } from '../http-client.ts';
import type { ScenarioResult } from '../report.ts';
import { withService } from '../service.ts';
import { distribution, fmtInt, fmtMs, note, progress, round, roundAll } from '../stats.ts';
import { farFuture, taskBody } from '../tasks.ts';

export const INGEST_BATCH_TARGET = 20_000;

export interface IngestBatchOptions {
  count: number;
  batchSize: number;
  inFlight: number;
  warmupBatches: number;
}

export interface IngestSingleOptions {
  requests: number;
  clients: number;
  warmupRequests: number;
}

/** CPU seconds (user + system) a process has used so far; Linux only, NaN elsewhere. */
function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return Number.NaN;
  }
}

/** Runs `total` jobs with `width` in flight; returns per-job latencies (ms) and the wall time. */
async function closedLoop(total: number, width: number, job: (i: number) => Promise<void>) {
  const latencies = new Float64Array(total);
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    for (let i = next++; i < total; i = next++) {
      const t = performance.now();
      await job(i);
      latencies[i] = performance.now() - t;
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return { latencies, wallMs: performance.now() - started };
}

function cpuSnapshot(pid: number) {
  return { service: processCpuSeconds(pid), client: process.cpuUsage() };
}

function cpuSince(pid: number, before: ReturnType<typeof cpuSnapshot>) {
  const client = process.cpuUsage(before.client);
  return {
    serviceCpuS: round(processCpuSeconds(pid) - before.service, 2),
    clientCpuS: round((client.user + client.system) / 1e6, 2),
  };
}

async function countStored(fresh: FreshStore): Promise<number | undefined> {
  const store = await fresh.open();
  try {
    const counts = await store.taskCountByState();
    return Object.values(counts).reduce((a, b) => a + b, 0);
  } finally {
    await store.close();
  }
}

export async function runIngestBatch(fresh: FreshStore, o: IngestBatchOptions): Promise<ScenarioResult> {
  const when = farFuture();
  const body = (r: number) =>
    JSON.stringify({ tasks: Array.from({ length: o.batchSize }, (_, i) => taskBody(when + r, r * o.batchSize + i)) });
  const requests = Math.ceil(o.count / o.batchSize);
  const bodies = Array.from({ length: requests }, (_, r) => body(r));
  const warmups = Array.from({ length: o.warmupBatches }, (_, r) => body(requests + r));
  const measured = await withService(fresh, async (service) => {
    const client = new Client(service.url, o.inFlight);
    let acked = 0;
    let failures = 0;
    const send = async (json: string, countIt: boolean) => {
      const reply = await client.post('/v1/tasks/batch', json);
      if (reply.status !== 200) throw new Error(`batch create answered ${reply.status}: ${reply.body.slice(0, 500)}`);
      const results = (JSON.parse(reply.body) as { results: { status: string }[] }).results;
      const created = results.filter((r) => r.status === 'created').length;
      if (created !== o.batchSize) failures += o.batchSize - created;
      if (countIt) acked += created;
    };
    for (const json of warmups) await send(json, false);
    const before = cpuSnapshot(service.pid);
    const stop = progress('ingest-batch', () => `${fmtInt(acked)}/${fmtInt(o.count)} acknowledged`);
    const run = await closedLoop(requests, o.inFlight, (i) => send(bodies[i] as string, true));
    stop();
    const cpu = cpuSince(service.pid, before);
    client.close();
    return { ...run, acked, failures, cpu };
  });
  const stored = await countStored(fresh);
  const expectedStored = (requests + o.warmupBatches) * o.batchSize;
  const tasksPerSec = (measured.acked / measured.wallMs) * 1000;
  const latency = distribution(measured.latencies);
  return {
    scenario: 'ingest-batch',
    rows: [
      {
        metric: 'tasks/s acknowledged (durable)',
        value: fmtInt(tasksPerSec),
        target: `>= ${fmtInt(INGEST_BATCH_TARGET)}`,
        pass: tasksPerSec >= INGEST_BATCH_TARGET && measured.failures === 0,
      },
      { metric: 'tasks acknowledged / sent', value: `${fmtInt(measured.acked)} / ${fmtInt(requests * o.batchSize)}` },
      ...storedRows(stored, expectedStored),
      {
        metric: 'request latency p50 / p99 / max (ms)',
        value: `${fmtMs(latency.p50)} / ${fmtMs(latency.p99)} / ${fmtMs(latency.max)}`,
      },
      { metric: 'CPU s: service / bench client', value: `${measured.cpu.serviceCpuS} / ${measured.cpu.clientCpuS}` },
    ],
    raw: {
      settings: { ...o, requests },
      wallMs: round(measured.wallMs, 1),
      tasksPerSec: round(tasksPerSec, 0),
      acked: measured.acked,
      notCreated: measured.failures,
      storedAfterStop: stored,
      expectedStored,
      requestLatencyMs: roundAll(latency),
      cpu: measured.cpu,
    },
  };
}

export async function runIngestSingle(fresh: FreshStore, o: IngestSingleOptions): Promise<ScenarioResult> {
  const when = farFuture();
  const bodies = Array.from({ length: o.requests + o.warmupRequests }, (_, i) => JSON.stringify(taskBody(when + i, i)));
  const measured = await withService(fresh, async (service) => {
    const client = new Client(service.url, o.clients);
    let done = 0;
    const send = async (i: number) => {
      const reply = await client.post('/v1/tasks', bodies[i] as string);
      if (reply.status !== 201) throw new Error(`create answered ${reply.status}: ${reply.body.slice(0, 500)}`);
      done++;
    };
    note(`  warm-up: ${o.warmupRequests} requests`);
    await closedLoop(o.warmupRequests, o.clients, (i) => send(o.requests + i));
    done = 0;
    const before = cpuSnapshot(service.pid);
    const stop = progress('ingest-single', () => `${fmtInt(done)}/${fmtInt(o.requests)} requests`);
    const run = await closedLoop(o.requests, o.clients, send);
    stop();
    const cpu = cpuSince(service.pid, before);
    client.close();
    return { ...run, done, cpu };
  });
  const stored = await countStored(fresh);
  const expectedStored = o.requests + o.warmupRequests;
  const rps = (measured.done / measured.wallMs) * 1000;
  const latency = distribution(measured.latencies);
  return {
    scenario: 'ingest-single',
    rows: [
      { metric: 'requests/s (201, durable)', value: fmtInt(rps) },
      { metric: 'latency p50 (ms)', value: fmtMs(latency.p50) },
      { metric: 'latency p99 (ms)', value: fmtMs(latency.p99) },
      { metric: 'latency max (ms)', value: fmtMs(latency.max) },
      ...storedRows(stored, expectedStored),
      { metric: 'CPU s: service / bench client', value: `${measured.cpu.serviceCpuS} / ${measured.cpu.clientCpuS}` },
    ],
    raw: {
      settings: o,
      wallMs: round(measured.wallMs, 1),
      requestsPerSec: round(rps, 0),
      latencyMs: roundAll(latency),
      storedAfterStop: stored,
      expectedStored,
      cpu: measured.cpu,
    },
  };
}

/** The check that every acknowledged task is in the store (absent when the store cannot be counted). */
function storedRows(stored: number | undefined, expected: number) {
  if (stored === undefined) return [];
  return [
    { metric: 'tasks in store after stop', value: fmtInt(stored), target: fmtInt(expected), pass: stored === expected },
  ];
}
