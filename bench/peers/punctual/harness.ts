/**
 * Peer harness for Punctual as a library, with an in-process handler: `node harness.ts '<json>'`.
 * The protocol (commands, fields, record file) is in ../README.md; settings in SETTINGS.md.
 *
 * `system` is `punctual-sqlite` (a SQLite file in os.tmpdir()/punctual-peers/<schema>.db) or
 * `punctual-postgres` (the schema `schema` on `postgresUrl`). One profile: Punctual's defaults;
 * `tuned` runs the same settings.
 */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NewTask } from '../../../src/core/task.ts';
import { createPunctual } from '../../../src/punctual.ts';
import { openStore } from '../../../src/store/open-store.ts';
import type { TaskStore } from '../../../src/store/store.ts';
import { storeUrl } from '../../../test/helpers/postgres-server.ts';
import { NOOP, newTask } from '../../lib/tasks.ts';
import { emit, fail, type HarnessRequest, type TaskPayload, taskRunner } from '../protocol.ts';

type System = 'punctual-sqlite' | 'punctual-postgres';
type Request = HarnessRequest<System>;

/** Punctual's own defaults (src/dispatch/dispatcher.ts, src/core/task.ts). */
const DEFAULT_CONCURRENCY = 100;
const DEFAULT_MAX_HELD = 5_000;
const STOP_TIMEOUT_MS = 60_000;

function parseRequest(text: string | undefined): Request {
  if (!text) throw new Error("usage: node harness.ts '<json>'");
  const request = JSON.parse(text) as Request;
  if (!['setup', 'ingest', 'enqueue', 'work'].includes(request.command)) {
    throw new Error(`unknown command: ${request.command}`);
  }
  if (request.system !== 'punctual-sqlite' && request.system !== 'punctual-postgres') {
    throw new Error(`unknown system: ${request.system}`);
  }
  if (!request.schema || !/^[a-z_][a-z0-9_]*$/.test(request.schema)) {
    throw new Error(`schema must be a lower-case SQL identifier, got: ${request.schema}`);
  }
  if (request.system === 'punctual-postgres' && !request.postgresUrl) throw new Error('needs postgresUrl');
  if (request.command === 'ingest' || request.command === 'enqueue') {
    for (const field of ['count', 'api', 'firstDueAt', 'intervalMs'] as const) {
      if (request[field] === undefined) throw new Error(`${request.command} needs ${field}`);
    }
    if (request.api === 'batch' && !request.batchSize) throw new Error('batch needs batchSize');
  }
  if (request.command === 'work' && !request.recordFile) throw new Error('work needs recordFile');
  return request;
}

/** The SQLite file of a schema: created by `setup`, reused by every later command. */
export function sqliteFile(schema: string): string {
  return join(tmpdir(), 'punctual-peers', `${schema}.db`);
}

function storeUrlOf(request: Request): string {
  if (request.system === 'punctual-sqlite') {
    mkdirSync(join(tmpdir(), 'punctual-peers'), { recursive: true });
    return `sqlite:${sqliteFile(request.schema)}`;
  }
  return storeUrl(request.postgresUrl!, { schema: request.schema });
}

/**
 * A task's lease is its timeout plus the node's lease grace: with `leaseMs`, the two add up to
 * `leaseMs` (a fifth of it grace, at least 1 s), so a killed node's tasks are taken over after
 * about `leaseMs`. The timeout is fixed on the task when it is created, as pg-boss fixes expiry.
 */
function leaseSplit(leaseMs: number | undefined): { timeoutMs?: number; graceMs?: number } {
  if (leaseMs === undefined) return {};
  const graceMs = Math.max(1_000, Math.round(leaseMs / 5));
  return { timeoutMs: Math.max(1_000, leaseMs - graceMs), graceMs };
}

function taskAt(request: Request, i: number): NewTask {
  const due = request.firstDueAt! + i * request.intervalMs!;
  const task = newTask(due, i);
  task.payload = { i, due };
  const { timeoutMs } = leaseSplit(request.leaseMs);
  if (timeoutMs !== undefined) task.timeoutMs = timeoutMs;
  return task;
}

/** ingest / enqueue through `createTasks` (the HTTP API's path, group-committed); only the calls are timed. */
async function load(store: TaskStore, request: Request): Promise<void> {
  const count = request.count!;
  // A handler for the name keeps the tasks on the in-process handler target. The dispatcher is
  // not started here, so no task is claimed by this short-lived process.
  const punctual = createPunctual({ store }).handle(NOOP, () => {});
  const started = performance.now();
  if (request.api === 'single') {
    for (let i = 0; i < count; i++) await punctual.createTasks([taskAt(request, i)]);
  } else {
    const size = request.batchSize!;
    for (let first = 0; first < count; first += size) {
      const tasks: NewTask[] = [];
      for (let i = first; i < Math.min(first + size, count); i++) tasks.push(taskAt(request, i));
      const results = await punctual.createTasks(tasks);
      const failed = results.find((r) => r.status !== 'created');
      if (failed) throw new Error(`createTasks: ${JSON.stringify(failed).slice(0, 200)}`);
    }
  }
  const ms = performance.now() - started;
  emit({ event: 'done', count, ms });
}

let stopWorker: (() => Promise<void>) | undefined;
let terminating = false;
let command: Request['command'] | undefined;

function stopGracefully(stop: () => Promise<void>): void {
  setTimeout(() => fail(`graceful stop took over ${STOP_TIMEOUT_MS} ms`), STOP_TIMEOUT_MS).unref();
  stop().then(() => process.exit(0), fail);
}

function onSignal(signal: NodeJS.Signals): void {
  if (command !== 'work') fail(`interrupted by ${signal}`);
  if (terminating) return;
  terminating = true;
  if (stopWorker) stopGracefully(stopWorker);
}

async function work(store: TaskStore, request: Request): Promise<void> {
  const concurrency = request.concurrency ?? DEFAULT_CONCURRENCY;
  const { graceMs } = leaseSplit(request.leaseMs);
  const punctual = createPunctual({
    store,
    concurrency,
    maxHeld: Math.max(DEFAULT_MAX_HELD, concurrency),
    ...(graceMs === undefined ? {} : { leaseGraceMs: graceMs }),
  });
  const runTask = taskRunner(request.recordFile!, request.handlerMs);
  punctual.handle(NOOP, (task) => runTask(task.payload as TaskPayload));
  await punctual.start();
  stopWorker = async () => {
    await punctual.stop();
    await store.close();
  };
  emit({ event: 'ready' });
  if (terminating) stopGracefully(stopWorker);
}

async function main(): Promise<void> {
  const request = parseRequest(process.argv[2]);
  command = request.command;
  const store = await openStore(storeUrlOf(request)); // SQL stores migrate on open: that is `setup`
  if (request.command === 'work') return work(store, request);
  if (request.command === 'ingest' || request.command === 'enqueue') await load(store, request);
  await store.close();
  process.exit(0);
}

process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);
process.on('unhandledRejection', fail);
main().catch(fail);
