/**
 * /healthz and /readyz for load balancers and orchestrators. Both answer 200 only while the
 * service is started and not shutting down, so a node that is draining leaves the rotation
 * before it stops answering.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { PunctualError } from '../../core/errors.ts';
import { HealthStatus } from '../../core/schemas.ts';
import type { TaskService } from '../../task-service.ts';
import { sendProblem } from '../problem.ts';

export const healthRoutes: FastifyPluginAsyncTypebox<{ service: TaskService }> = async (app, { service }) => {
  for (const url of ['/healthz', '/readyz']) {
    app.get(url, { schema: { hide: true, response: { 200: HealthStatus } } }, async (_request, reply) => {
      if (!service.isReady()) {
        return sendProblem(
          reply,
          new PunctualError('PUNCTUAL_NOT_READY', 'the service is not started or is shutting down'),
        );
      }
      return { status: 'ok' as const };
    });
  }
};
