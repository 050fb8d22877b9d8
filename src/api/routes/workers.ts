/**
 * The worker protocol: remote workers claim due tasks from a queue by long-poll, then heartbeat,
 * complete or fail each one, fenced by the lease token it was claimed with. A worker that goes
 * silent loses the lease when it expires, and the task is claimed again.
 *
 *   POST /v1/queues/:queue/claim   {max?, wait_ms?}            → {tasks: [task + lease_token]}
 *   POST /v1/tasks/:id/heartbeat   {lease_token}               → {lease_expires_at}
 *   POST /v1/tasks/:id/complete    {lease_token}               → 204
 *   POST /v1/tasks/:id/fail        {lease_token, error, retryable?, retry_after_ms?} → 204
 *
 * A report for a lease the worker no longer holds is a 409 (PUNCTUAL_LEASE_LOST): the task was
 * taken over, and this worker's result must not count.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PunctualError } from '../../core/errors.ts';
import {
  ClaimBody,
  ClaimResult,
  FailBody,
  HeartbeatResult,
  LeaseBody,
  QueueParams,
  TaskIdParams,
} from '../../core/schemas.ts';
import type { Task } from '../../core/task.ts';
import { formatRfc3339 } from '../../core/time.ts';
import type { ReportVerdict } from '../../dispatch/worker-reports.ts';
import { bodyError, problemResponses } from '../problem.ts';
import { toTaskResource } from '../task-resource.ts';
import { parseTaskId, type TaskRoutesOptions } from './tasks.ts';

const DEFAULT_WAIT_MS = 20_000;

export const workerRoutes: FastifyPluginAsyncTypebox<TaskRoutesOptions> = async (app, { service }) => {
  app.post(
    '/v1/queues/:queue/claim',
    {
      schema: {
        operationId: 'claimTasks',
        tags: ['workers'],
        summary: 'Claim due tasks from a worker queue, waiting up to wait_ms for one to fall due',
        description:
          'Each task comes leased to the caller (state running) with its lease_token. Heartbeat before lease.expires_at for long work; complete or fail it when done.',
        params: QueueParams,
        body: ClaimBody,
        response: { 200: ClaimResult, ...problemResponses(400, 415, 503) },
      },
    },
    async (request, reply) => {
      const { max = 1, wait_ms: waitMs = DEFAULT_WAIT_MS } = request.body ?? {};
      const gone = new AbortController();
      // The worker hung up while waiting: tasks handed to it go to the next worker instead.
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) gone.abort();
      });
      const tasks = await service.claimFromQueue(request.params.queue, { max, waitMs, signal: gone.signal });
      return { tasks: tasks.map(claimedTask) };
    },
  );

  app.post(
    '/v1/tasks/:id/heartbeat',
    {
      schema: {
        operationId: 'heartbeatTask',
        tags: ['workers'],
        summary: "Extend a claimed task's lease by its timeout (plus the lease grace) from now",
        params: TaskIdParams,
        body: LeaseBody,
        response: { 200: HeartbeatResult, ...problemResponses(400, 404, 409, 415) },
      },
      preValidation: requireBody,
    },
    async (request) => {
      const taskId = parseTaskId(request.params.id);
      const { verdict, leaseExpiresAt } = await service.reportWork({
        taskId,
        leaseToken: request.body.lease_token,
        status: 'heartbeat',
      });
      accepted(verdict, taskId);
      return { lease_expires_at: formatRfc3339(leaseExpiresAt as number) };
    },
  );

  app.post(
    '/v1/tasks/:id/complete',
    {
      schema: {
        operationId: 'completeTask',
        tags: ['workers'],
        summary: 'Report a claimed task done: it succeeds',
        params: TaskIdParams,
        body: LeaseBody,
        response: { 204: { type: 'null', description: 'Recorded.' }, ...problemResponses(400, 404, 409, 415) },
      },
      preValidation: requireBody,
    },
    async (request, reply) => {
      const taskId = parseTaskId(request.params.id);
      const { verdict } = await service.reportWork({
        taskId,
        leaseToken: request.body.lease_token,
        status: 'succeeded',
      });
      accepted(verdict, taskId);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/v1/tasks/:id/fail',
    {
      schema: {
        operationId: 'failTask',
        tags: ['workers'],
        summary: "Report a claimed task's attempt failed: retried by its backoff while attempts are left",
        params: TaskIdParams,
        body: FailBody,
        response: { 204: { type: 'null', description: 'Recorded.' }, ...problemResponses(400, 404, 409, 415) },
      },
      preValidation: requireBody,
    },
    async (request, reply) => {
      const taskId = parseTaskId(request.params.id);
      const { lease_token, error, retryable, retry_after_ms } = request.body;
      const { verdict } = await service.reportWork({
        taskId,
        leaseToken: lease_token,
        status: 'failed',
        error,
        retryable: retryable ?? true,
        retryAfterMs: retry_after_ms,
      });
      accepted(verdict, taskId);
      return reply.status(204).send(null);
    },
  );
};

function claimedTask(task: Task) {
  return { ...toTaskResource(task), lease_token: task.leaseToken as string };
}

function accepted(verdict: ReportVerdict, taskId: string): void {
  if (verdict === 'not_found') throw new PunctualError('PUNCTUAL_TASK_NOT_FOUND', `no task has id ${taskId}`);
  if (verdict === 'stale') {
    throw new PunctualError(
      'PUNCTUAL_LEASE_LOST',
      `task ${taskId} is no longer leased with this token: its lease expired or it was reported already`,
    );
  }
}

async function requireBody(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  if (request.body === undefined) throw bodyError('required', 'is required: send {"lease_token": "..."} as JSON');
}
