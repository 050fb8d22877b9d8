/**
 * The peer-harness protocol (../README.md) for the three systems served here: the request narrowed
 * to them, its checks, and the interface each system module implements. The request, the payload
 * and the record line themselves are in ../protocol.ts, shared with the driver and Punctual's harness.
 */
import type { HarnessRequest, TaskPayload } from '../protocol.ts';

export { log, taskRunner } from '../protocol.ts';

export const SYSTEMS = ['graphile-worker', 'pg-boss', 'bullmq'] as const;
export type System = (typeof SYSTEMS)[number];
/** A request to this harness. */
export type Request = HarnessRequest<System>;
/** The payload of every task. */
export type Task = TaskPayload;

/** Runs one task: what every peer's handler calls with the task's payload. */
export type RunTask = (task: Task) => Promise<void>;

export interface Producer {
  /** One call per task (`api: single`). */
  addOne(task: Task): Promise<void>;
  /** The peer's batch call (`api: batch`). */
  addMany(tasks: Task[]): Promise<void>;
  close(): Promise<void>;
}

export interface Peer {
  /** Creates the schema / runs the peer's migrations (or checks the store for BullMQ). */
  setup(request: Request): Promise<void>;
  /** Opens the connection that ingest/enqueue reuse for every add. */
  producer(request: Request): Promise<Producer>;
  /** Starts the worker; resolves once it can run tasks, with a graceful stop. */
  work(request: Request, runTask: RunTask): Promise<() => Promise<void>>;
}

export function parseRequest(text: string | undefined): Request {
  if (!text) throw new Error("usage: node harness.ts '<json>'");
  const request = JSON.parse(text) as Request;
  if (!['setup', 'ingest', 'enqueue', 'work'].includes(request.command)) {
    throw new Error(`unknown command: ${request.command}`);
  }
  if (!SYSTEMS.includes(request.system)) throw new Error(`unknown system: ${request.system}`);
  if (request.profile !== 'defaults' && request.profile !== 'tuned') {
    throw new Error(`unknown profile: ${request.profile}`);
  }
  if (!request.schema || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(request.schema)) {
    throw new Error(`schema must be a bare SQL identifier, got: ${request.schema}`);
  }
  const need = (field: keyof Request) => {
    if (request[field] === undefined) throw new Error(`${request.command} needs ${field}`);
  };
  need(request.system === 'bullmq' ? 'redisUrl' : 'postgresUrl');
  if (request.command === 'ingest' || request.command === 'enqueue') {
    for (const field of ['count', 'api', 'firstDueAt', 'intervalMs'] as const) need(field);
    if (request.api !== 'single' && request.api !== 'batch') throw new Error(`unknown api: ${request.api}`);
    if (request.api === 'batch') need('batchSize');
  }
  if (request.command === 'work') need('recordFile');
  return request;
}

/** Task `i` of an ingest/enqueue request. */
export function taskAt(request: Request, i: number): Task {
  return { i, due: request.firstDueAt! + i * request.intervalMs! };
}
