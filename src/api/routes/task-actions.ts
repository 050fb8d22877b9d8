/**
 * POST /v1/tasks/:id/{cancel,retry,run}: state changes that take no body.
 *
 * Clients send such POSTs in every way: no body, an empty body with `Content-Type:
 * application/json` (many HTTP clients set it globally), `{}`, or `curl -d ''` (form-encoded,
 * empty). All of those are accepted here, in this plugin's own scope, without loosening the
 * JSON-only rule of the other routes. A body with content is refused.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PunctualError, validationError } from '../../core/errors.ts';
import { TaskIdParams, TaskResource } from '../../core/schemas.ts';
import type { TaskChangeResult } from '../../store/store.ts';
import type { TaskService } from '../../task-service.ts';
import { bodyError, problemResponses } from '../problem.ts';
import { changedTask, parseTaskId, type TaskAction, type TaskRoutesOptions } from './tasks.ts';

interface ActionRoute {
  action: TaskAction;
  operationId: string;
  summary: string;
  run: (service: TaskService, id: string) => Promise<TaskChangeResult>;
}

const ACTIONS: ActionRoute[] = [
  {
    action: 'cancel',
    operationId: 'cancelTask',
    summary: 'Cancel a scheduled task',
    run: (service, id) => service.cancelTask(id),
  },
  {
    action: 'retry',
    operationId: 'retryTask',
    summary: 'Schedule a failed task again, now, with a fresh set of attempts',
    run: (service, id) => service.retryTask(id),
  },
  {
    action: 'run',
    operationId: 'runTask',
    summary: 'Run a scheduled task now instead of at its time',
    run: (service, id) => service.runTaskNow(id),
  },
];

export const taskActionRoutes: FastifyPluginAsyncTypebox<TaskRoutesOptions> = async (app, { service }) => {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  // Any other content type: fine if empty; a body without a content type is read as JSON.
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    if (request.headers['content-type'] === undefined) {
      parseJson(request, text, done);
      return;
    }
    done(
      new PunctualError(
        'PUNCTUAL_UNSUPPORTED_MEDIA_TYPE',
        'this action takes no body; send none, or {} as application/json',
      ),
    );
  });
  app.addHook('preValidation', requireNoBody);

  for (const { action, operationId, summary, run } of ACTIONS) {
    app.post(
      `/v1/tasks/:id/${action}`,
      {
        schema: {
          operationId,
          tags: ['tasks'],
          summary,
          params: TaskIdParams,
          response: { 200: TaskResource, ...problemResponses(400, 404, 409, 415) },
        },
      },
      async (request) => {
        const id = parseTaskId(request.params.id);
        return changedTask(await run(service, id), id, action);
      },
    );
  }
};

async function requireNoBody(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  const body = request.body;
  if (body === undefined) return;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw bodyError('type', 'must be absent or an empty object');
  }
  const [first] = Object.keys(body);
  if (first !== undefined)
    throw validationError(`/${first}`, 'additionalProperties', 'is not a known field; this action takes no body');
}
