/**
 * buildApp(): the HTTP API as a Fastify instance that is built but never listens — `punctual
 * serve` listens, tests call `app.inject()`. The API reaches tasks only through the TaskService
 * it is given, never a store.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import packageJson from '../../package.json' with { type: 'json' };
import { PunctualError } from '../core/errors.ts';
import {
  BatchCreateBody,
  BatchResult,
  CreateTaskBody,
  ListQuery,
  PatchTaskBody,
  Problem,
  TaskList,
  TaskResource,
  TaskWithAttemptsResource,
} from '../core/schemas.ts';
import { isRfc3339 } from '../core/time.ts';
import type { TaskService } from '../task-service.ts';
import type { ApiKeys } from './api-keys.ts';
import { notFoundHandler, problemErrorHandler, sendProblem } from './problem.ts';
import { healthRoutes } from './routes/health.ts';
import { taskActionRoutes } from './routes/task-actions.ts';
import { taskRoutes } from './routes/tasks.ts';
import { workerRoutes } from './routes/workers.ts';

/** 1 MiB: a task is at most a 256 KiB payload plus small fields; batches get their own limit. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;

export interface AppOptions {
  service: TaskService;
  /** Fastify's logger options (`true`, `{ level }`) or a pino-compatible logger instance. */
  logger?: boolean | object;
  /** Largest request body for single-task routes, in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** When set, every request but health checks and the API description needs one of these keys. */
  apiKeys?: ApiKeys | null;
}

export function buildApp(options: AppOptions): FastifyInstance {
  const app = Fastify({
    ...loggerOptions(options.logger),
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // Errors the router raises before any route runs (a URL that does not decode, an overlong
    // path parameter) get problem+json too, instead of Fastify's own JSON.
    frameworkErrors: problemErrorHandler,
    ajv: {
      // Fastify's defaults would coerce "5" to 5, fill defaults into the request and silently
      // drop unknown fields; the API promises to reject all of those instead.
      customOptions: {
        coerceTypes: false,
        removeAdditional: false,
        useDefaults: false,
        allErrors: false,
        discriminator: true,
      },
      // One definition of an RFC 3339 date-time for the schema check and the conversion to ms.
      onCreate: (ajv) => {
        ajv.addFormat('date-time', isRfc3339);
      },
    },
  });

  // Responses are plain JSON.stringify: the response schemas document the API (and tests check
  // responses against them), but fast-json-stringify would silently drop a field the schema lacks.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  installJsonParser(app);
  app.setErrorHandler(problemErrorHandler);
  app.setNotFoundHandler(notFoundHandler);
  if (options.apiKeys) requireApiKeys(app, options.apiKeys);

  app.register(swagger, {
    // OpenAPI 3.1 is JSON Schema: keep `const` so the published schemas are the validating ones.
    convertConstToEnum: false,
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Punctual',
        version: packageJson.version,
        description: packageJson.description,
      },
      tags: [
        { name: 'tasks', description: 'Schedule, inspect and control tasks' },
        { name: 'workers', description: 'Remote workers: claim tasks from a queue, heartbeat, report outcomes' },
      ],
      components: {
        // The same objects the routes validate with, published under stable names.
        schemas: {
          CreateTaskBody,
          BatchCreateBody,
          PatchTaskBody,
          ListQuery,
          TaskResource,
          TaskWithAttemptsResource,
          TaskList,
          BatchResult,
          Problem,
          // TypeBox's schema types are wider than openapi-types' SchemaObject; the JSON is the same.
        } as Record<string, object>,
      },
    },
  });
  app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  // During shutdown, answers close their connection: the server's close waits for every open
  // connection, and a kept-alive one (a worker's, just answered) would hold it for the keep-alive.
  app.addHook('onSend', async (_request, reply) => {
    if (options.service.isShuttingDown()) reply.header('connection', 'close');
  });
  app.register(healthRoutes, { service: options.service });
  app.register(taskRoutes, { service: options.service });
  app.register(taskActionRoutes, { service: options.service });
  app.register(workerRoutes, { service: options.service });
  return app;
}

/** Open without a key: load balancers' health checks and the API's own description. */
const OPEN_PATHS = /^\/(healthz|readyz|openapi\.json|docs)(\/|\?|$)/;

function requireApiKeys(app: FastifyInstance, keys: ApiKeys): void {
  app.addHook('onRequest', async (request, reply) => {
    if (OPEN_PATHS.test(request.url)) return;
    const header = request.headers.authorization;
    const presented = header?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
    const verdict = presented === undefined ? null : keys.check(presented);
    if (verdict?.status === 'ok') return;
    const detail =
      verdict === null
        ? 'send an API key as "Authorization: Bearer <key>"'
        : verdict.status === 'revoked'
          ? 'this API key has been revoked'
          : 'this API key is not recognised';
    reply.header('www-authenticate', 'Bearer realm="punctual"');
    return sendProblem(reply, new PunctualError('PUNCTUAL_UNAUTHORIZED', detail));
  });
}

/**
 * Only JSON is accepted (Fastify's text/plain parser is removed, so a text body gets a 415, not a
 * confusing type error). An empty JSON body reaches the route as `undefined`: action routes take
 * no body, and create routes turn it into a 400 that says the body is missing.
 */
function installJsonParser(app: FastifyInstance): void {
  // 'error' on __proto__ / constructor keys: prototype poisoning is refused, not stripped.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') {
      done(null, undefined);
      return;
    }
    parseJson(request, body as string, done);
  });
}

function loggerOptions(logger: AppOptions['logger']): {
  logger?: boolean | object;
  loggerInstance?: FastifyBaseLogger;
} {
  if (logger === undefined) return {};
  const looksLikeInstance = typeof logger === 'object' && typeof (logger as { child?: unknown }).child === 'function';
  // Fastify 5 takes a ready-made logger (pino) as `loggerInstance` and options as `logger`.
  return looksLikeInstance ? { loggerInstance: logger as FastifyBaseLogger } : { logger };
}
