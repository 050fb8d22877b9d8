import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateTaskBody, PatchTaskBody, TaskResource } from '../../src/core/schemas.ts';
import { createTask, expectProblem, type Harness, startHarness } from './harness.ts';

/** What a schema looks like once published: its JSON form (TypeBox's marker is not enumerable). */
const published = (schema: object) => JSON.parse(JSON.stringify(schema));

describe('OpenAPI and docs', () => {
  let h: Harness;
  // The document is checked piece by piece; a full OpenAPI type would add nothing here.
  // biome-ignore lint/suspicious/noExplicitAny: free-form JSON under test
  let doc: any;
  beforeAll(async () => {
    h = await startHarness();
    const res = await h.app.inject({ url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    doc = res.json();
  });
  afterAll(async () => {
    await h.close();
  });

  it('is an OpenAPI 3.1 document with the task routes', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: 'Punctual', version: expect.any(String) });
    expect(Object.keys(doc.paths['/v1/tasks'])).toEqual(expect.arrayContaining(['get', 'post']));
    expect(Object.keys(doc.paths['/v1/tasks/{id}'])).toEqual(expect.arrayContaining(['get', 'patch']));
    for (const path of ['/v1/tasks/batch', '/v1/tasks/{id}/cancel', '/v1/tasks/{id}/retry', '/v1/tasks/{id}/run']) {
      expect(doc.paths[path]?.post, path).toBeDefined();
    }
    const operationIds = Object.values(doc.paths as Record<string, Record<string, { operationId?: string }>>).flatMap(
      (item) => Object.values(item).map((op) => op.operationId),
    );
    expect(operationIds).toEqual(
      expect.arrayContaining([
        'createTask',
        'createTasks',
        'getTask',
        'listTasks',
        'updateTask',
        'cancelTask',
        'retryTask',
        'runTask',
      ]),
    );
    // Operational and documentation routes stay out of the API description.
    expect(doc.paths['/healthz']).toBeUndefined();
    expect(doc.paths['/openapi.json']).toBeUndefined();
  });

  it('publishes the very schemas that validate requests', () => {
    expect(doc.components.schemas.CreateTaskBody).toEqual(published(CreateTaskBody));
    expect(doc.components.schemas.PatchTaskBody).toEqual(published(PatchTaskBody));
    expect(doc.components.schemas.TaskResource).toEqual(published(TaskResource));
    const createBody = doc.paths['/v1/tasks'].post.requestBody;
    expect(createBody.content['application/json'].schema).toEqual(published(CreateTaskBody));
    expect(doc.paths['/v1/tasks'].post.responses['201'].content['application/json'].schema).toEqual(
      published(TaskResource),
    );
  });

  it('documents problems as application/problem+json and the query parameters', () => {
    const responses = doc.paths['/v1/tasks'].post.responses;
    expect(responses['400'].content['application/problem+json'].schema.required).toEqual(
      expect.arrayContaining(['type', 'title', 'status', 'detail', 'code']),
    );
    const params = (doc.paths['/v1/tasks'].get.parameters as { in: string; name: string }[]).map(
      (p) => `${p.in}:${p.name}`,
    );
    expect(params).toEqual(
      expect.arrayContaining(['query:state', 'query:limit', 'query:cursor', 'query:scheduled_after']),
    );
  });

  it('serves interactive docs at /docs', async () => {
    let res = await h.app.inject({ url: '/docs' });
    if (res.statusCode === 302) res = await h.app.inject({ url: res.headers.location as string });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toMatch(/swagger/i);
  });
});

describe('health', () => {
  it('healthz and readyz are 503 before start, 200 after, 503 again once stopping', async () => {
    const h = await startHarness({ start: false });
    try {
      for (const url of ['/healthz', '/readyz']) {
        expectProblem(await h.app.inject({ url }), 503, 'PUNCTUAL_NOT_READY');
      }
      await h.punctual.start();
      for (const url of ['/healthz', '/readyz']) {
        const res = await h.app.inject({ url });
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({ status: 'ok' });
      }
      await h.punctual.stop({ graceMs: 0 });
      expectProblem(await h.app.inject({ url: '/readyz' }), 503, 'PUNCTUAL_NOT_READY');
    } finally {
      await h.close();
    }
  });
});

describe('errors outside the routes', () => {
  it('an unknown route → 404 problem', async () => {
    const h = await startHarness();
    try {
      expectProblem(await h.app.inject({ url: '/v2/tasks' }), 404, 'PUNCTUAL_ROUTE_NOT_FOUND');
      expectProblem(await h.app.inject({ method: 'DELETE', url: '/v1/tasks' }), 404, 'PUNCTUAL_ROUTE_NOT_FOUND');
    } finally {
      await h.close();
    }
  });

  it('a failing store → 503 PUNCTUAL_STORE_UNAVAILABLE, with nothing internal in the body', async () => {
    const h = await startHarness();
    try {
      const task = await createTask(h.app);
      await h.store.close(); // the store now throws on every call: a real failure, not a fake
      for (const res of [
        await h.app.inject({ url: `/v1/tasks/${task.id}` }),
        await h.app.inject({
          method: 'POST',
          url: '/v1/tasks',
          payload: { name: 'x', scheduled_date: '2030-01-01T00:00:00Z' },
        }),
        await h.app.inject({ method: 'POST', url: `/v1/tasks/${task.id}/cancel` }),
      ]) {
        expectProblem(res, 503, 'PUNCTUAL_STORE_UNAVAILABLE');
        expect(res.body).not.toMatch(/stack|at .*\.ts|connection is not open/i);
      }
    } finally {
      await h.close();
    }
  });

  it('takes a ready-made logger instance (as `punctual serve` passes pino)', async () => {
    const errors: unknown[] = [];
    const logger = {
      level: 'info',
      info() {},
      warn() {},
      debug() {},
      trace() {},
      fatal() {},
      silent() {},
      error(...args: unknown[]) {
        errors.push(args[0]);
      },
      child() {
        return logger;
      },
    };
    const h = await startHarness({ logger });
    try {
      const task = await createTask(h.app);
      await h.store.close();
      expectProblem(await h.app.inject({ url: `/v1/tasks/${task.id}` }), 503, 'PUNCTUAL_STORE_UNAVAILABLE');
      expect(errors).toContainEqual({ err: expect.any(Error) });
    } finally {
      await h.close();
    }
  });
});
