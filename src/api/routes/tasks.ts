/**
 * The task routes under /v1/tasks: create (one or a batch), read, list, edit. The body-less
 * actions (cancel, retry, run) are in task-actions.ts, in a scope with their own body rules.
 *
 * Every route validates and converts the whole request before it calls the service, so a bad
 * request changes nothing; a batch reaches the service as one call (one transaction).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PunctualError, validationError } from '../../core/errors.ts';
import { isUuid, uuidv7 } from '../../core/ids.ts';
import {
  BatchCreateBody,
  BatchResult,
  CreateTaskBody,
  CreateTaskHeaders,
  LIST_DEFAULT_LIMIT,
  LIST_MAX_LIMIT,
  ListQuery,
  PatchTaskBody,
  TaskIdParams,
  TaskList,
  TaskResource,
  TaskWithAttemptsResource,
} from '../../core/schemas.ts';
import { parseRfc3339 } from '../../core/time.ts';
import type { TaskChangeResult, TaskListParams } from '../../store/store.ts';
import type { TaskService } from '../../task-service.ts';
import { bodyError, problemResponses } from '../problem.ts';
import {
  decodeCursor,
  encodeCursor,
  resolveIdempotencyKey,
  toNewTask,
  toNewTasks,
  toTaskEdit,
  toTaskResource,
  toTaskWithAttemptsResource,
} from '../task-resource.ts';

/** 32 MiB: room for 1,000 tasks of typical size; each payload is still capped at 256 KiB. */
export const BATCH_BODY_LIMIT = 32 * 1024 * 1024;

export interface TaskRoutesOptions {
  service: TaskService;
}

export const taskRoutes: FastifyPluginAsyncTypebox<TaskRoutesOptions> = async (app, { service }) => {
  app.post(
    '/v1/tasks',
    {
      schema: {
        operationId: 'createTask',
        tags: ['tasks'],
        summary: 'Schedule a task',
        description:
          'Durable before the reply. A replay with the same idempotency key and body returns the first task (200).',
        headers: CreateTaskHeaders,
        body: CreateTaskBody,
        response: { 200: TaskResource, 201: TaskResource, ...problemResponses(400, 409, 413, 415) },
      },
      preValidation: requireBody,
    },
    async (request, reply) => {
      const header = request.headers['idempotency-key'];
      const key = resolveIdempotencyKey(request.body.idempotency_key, header);
      const [result] = await service.createTasks([toNewTask(request.body, '', uuidv7(), key)]);
      if (result === undefined) throw new PunctualError('PUNCTUAL_INTERNAL', 'the service returned no result');
      if (result.status === 'conflict') {
        throw new PunctualError(
          'PUNCTUAL_IDEMPOTENCY_CONFLICT',
          `idempotency key ${JSON.stringify(key)} was first used for task ${result.task.id} with a different request`,
        );
      }
      reply.header('location', `/v1/tasks/${result.task.id}`);
      return reply.status(result.status === 'created' ? 201 : 200).send(toTaskResource(result.task));
    },
  );

  app.post(
    '/v1/tasks/batch',
    {
      bodyLimit: BATCH_BODY_LIMIT,
      schema: {
        operationId: 'createTasks',
        tags: ['tasks'],
        summary: 'Schedule up to 1,000 tasks in one transaction',
        description:
          'Every item is validated first; one bad item fails the whole request and nothing is stored. ' +
          'Results come in input order: created, existing (an idempotent replay) or conflict.',
        body: BatchCreateBody,
        response: { 200: BatchResult, ...problemResponses(400, 413, 415) },
      },
      preValidation: requireBody,
    },
    async (request) => {
      const results = await service.createTasks(toNewTasks(request.body, () => uuidv7()));
      return { results: results.map((r) => ({ status: r.status, task: toTaskResource(r.task) })) };
    },
  );

  app.get(
    '/v1/tasks/:id',
    {
      schema: {
        operationId: 'getTask',
        tags: ['tasks'],
        summary: 'Get a task with its attempt log',
        params: TaskIdParams,
        response: { 200: TaskWithAttemptsResource, ...problemResponses(404) },
      },
    },
    async (request) => {
      const id = parseTaskId(request.params.id);
      const task = await service.getTask(id);
      if (task === null) throw taskNotFound(id);
      return toTaskWithAttemptsResource(task);
    },
  );

  app.get(
    '/v1/tasks',
    {
      schema: {
        operationId: 'listTasks',
        tags: ['tasks'],
        summary: 'List tasks in scheduled order, a page at a time',
        querystring: ListQuery,
        response: { 200: TaskList, ...problemResponses(400) },
      },
    },
    async (request) => {
      const query = request.query;
      const limit = parseLimit(query.limit);
      const params: TaskListParams = { limit: limit + 1 };
      if (query.state !== undefined) params.state = query.state;
      if (query.name !== undefined) params.name = query.name;
      if (query.namespace !== undefined) params.namespace = query.namespace;
      if (query.scheduled_after !== undefined)
        params.scheduledAfter = queryDate(query.scheduled_after, '/scheduled_after');
      if (query.scheduled_before !== undefined)
        params.scheduledBefore = queryDate(query.scheduled_before, '/scheduled_before');
      if (query.cursor !== undefined) params.after = decodeCursor(query.cursor);
      // One task more than the page tells whether another page exists without a count query.
      const tasks = await service.listTasks(params);
      const page = tasks.slice(0, limit);
      const last = page.at(-1);
      return {
        tasks: page.map(toTaskResource),
        next_cursor: tasks.length > limit && last !== undefined ? encodeCursor(last) : null,
      };
    },
  );

  app.patch(
    '/v1/tasks/:id',
    {
      schema: {
        operationId: 'updateTask',
        tags: ['tasks'],
        summary: 'Edit or reschedule a scheduled task',
        description: 'Send only the fields to change. `backoff` is merged over the current one.',
        params: TaskIdParams,
        body: PatchTaskBody,
        response: { 200: TaskResource, ...problemResponses(400, 404, 409, 413, 415) },
      },
      preValidation: requireBody,
    },
    async (request) => {
      const id = parseTaskId(request.params.id);
      const current = await service.getTask(id);
      if (current === null) throw taskNotFound(id);
      const result = await service.updateTask(id, toTaskEdit(request.body, current));
      return changedTask(result, id, 'update');
    },
  );
};

/** What each action allows, for a 409 that tells the client what to do instead. */
const ACTION_RULES = {
  cancel: 'only a scheduled task can be canceled',
  update: 'only a scheduled task can be edited',
  retry: 'only a failed task can be retried',
  run: 'only a scheduled task can be run now',
} as const;

export type TaskAction = keyof typeof ACTION_RULES;

/** The task after a change, or the 404 / 409 the service's answer calls for. */
export function changedTask(result: TaskChangeResult, id: string, action: TaskAction): TaskResource {
  if (result.status === 'not_found') throw taskNotFound(id);
  if (result.status === 'invalid_state') {
    throw new PunctualError('PUNCTUAL_INVALID_STATE', `task is ${result.task.state}; ${ACTION_RULES[action]}`);
  }
  return toTaskResource(result.task);
}

/**
 * Ids are UUIDs; anything else cannot name a task, so it is a 404 like an unknown id (the
 * store is not asked). Upper-case hex is the same UUID (RFC 9562), so it is accepted.
 */
export function parseTaskId(raw: string): string {
  const id = raw.toLowerCase();
  if (!isUuid(id)) throw taskNotFound(null);
  return id;
}

export function taskNotFound(id: string | null): PunctualError {
  return new PunctualError('PUNCTUAL_TASK_NOT_FOUND', id === null ? 'no task has this id' : `no task has the id ${id}`);
}

async function requireBody(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  if (request.body === undefined) throw bodyError('required', 'is required: send the task as JSON');
}

function parseLimit(text: string | undefined): number {
  if (text === undefined) return LIST_DEFAULT_LIMIT;
  const limit = Number(text);
  if (limit < 1) throw validationError('/limit', 'minimum', 'must be at least 1');
  if (limit > LIST_MAX_LIMIT) throw validationError('/limit', 'maximum', `must be at most ${LIST_MAX_LIMIT}`);
  return limit;
}

function queryDate(text: string, field: string): number {
  const ms = parseRfc3339(text);
  if (ms === null) throw validationError(field, 'format', 'must be an RFC 3339 date-time with an offset');
  return ms;
}
