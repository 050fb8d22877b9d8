/**
 * The API over a real Punctual service and a real SQLite store, one fresh database file per
 * harness, driven with `app.inject()` (nothing listens).
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import Value from 'typebox/value';
import { expect } from 'vitest';
import type { ApiKeys } from '../../src/api/api-keys.ts';
import { buildApp } from '../../src/api/app.ts';
import { type ErrorCode, problemType } from '../../src/core/errors.ts';
import { Problem, type TaskResource } from '../../src/core/schemas.ts';
import type { TaskState } from '../../src/core/task.ts';
import { createPunctual, type DispatchSettings, type Punctual } from '../../src/punctual.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { TaskHandler } from '../../src/targets/target.ts';

export interface Harness {
  app: FastifyInstance;
  punctual: Punctual;
  store: SqliteStore;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** Start the dispatcher (default true); healthz answers 503 until it is. */
  start?: boolean;
  handlers?: Record<string, TaskHandler>;
  logger?: boolean | object;
  bodyLimit?: number;
  apiKeys?: ApiKeys | null;
  /** Dispatcher settings (default: the defaults). */
  settings?: DispatchSettings;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'punctual-api-'));
  const store = SqliteStore.open({ path: join(dir, 'tasks.db') });
  await store.migrate();
  const punctual = createPunctual({ store, ...options.settings });
  for (const [name, handler] of Object.entries(options.handlers ?? {})) punctual.handle(name, handler);
  const app = buildApp({
    service: punctual,
    logger: options.logger,
    bodyLimit: options.bodyLimit,
    apiKeys: options.apiKeys,
  });
  if (options.start ?? true) await punctual.start();
  let closed = false;
  return {
    app,
    punctual,
    store,
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      await punctual.stop({ graceMs: 0 });
      await store.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A time far enough ahead that no dispatcher claims the task during a test. */
export const FUTURE = '2099-01-01T09:00:00Z';

export const inMs = (ms: number): string => new Date(Date.now() + ms).toISOString();

export function post(app: FastifyInstance, url: string, payload?: unknown, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url, payload: payload as object, headers });
}

export function patch(app: FastifyInstance, url: string, payload: unknown) {
  return app.inject({ method: 'PATCH', url, payload: payload as object });
}

/** Create a task far in the future and return its resource. */
export async function createTask(app: FastifyInstance, fields: Record<string, unknown> = {}): Promise<TaskResource> {
  const res = await post(app, '/v1/tasks', { name: 'noop', scheduled_date: FUTURE, ...fields });
  expect(res.statusCode, res.body).toBe(201);
  return res.json<TaskResource>();
}

/**
 * Assert an RFC 9457 problem: status, media type, stable code and type, the schema — and, for
 * validation problems, the field pointer and rule.
 */
export function expectProblem(
  res: LightMyRequestResponse,
  status: number,
  code: ErrorCode,
  field?: string,
  rule?: string,
): Problem {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json<Problem>();
  expect(Value.Check(Problem, body), res.body).toBe(true);
  expect(body).toMatchObject({ status, code, type: problemType(code) });
  expect(body.detail).toEqual(expect.any(String));
  if (field !== undefined) expect(body.errors?.[0]?.field, res.body).toBe(field);
  if (rule !== undefined) expect(body.errors?.[0]?.rule, res.body).toBe(rule);
  return body;
}

/** Resolve once the task reaches `state`, waking on each completion batch the dispatcher writes. */
export async function waitForState(harness: Harness, id: string, state: TaskState): Promise<void> {
  for (;;) {
    // Listen before reading, so a flush between the read and the wait is not missed.
    const flushed = once(harness.punctual.dispatcher, 'flushed');
    const task = await harness.punctual.getTask(id);
    if (task?.state === state) return;
    await flushed;
  }
}
