/**
 * Every error leaves the API as an RFC 9457 `application/problem+json` body:
 *   { type, title, status, detail, code, errors?: [{ field, rule, message }] }
 * `code` is one of ERROR_CODES (stable, documented in docs/errors.md); `field` is a JSON pointer
 * into the request body (or the query string, for query parameters) and `rule` the JSON Schema
 * keyword (or Punctual rule) it broke. Unexpected errors become PUNCTUAL_INTERNAL with a generic
 * detail: the stack goes to the log, never to the client.
 */
import type { FastifyError, FastifyReply, FastifyRequest, FastifySchemaValidationError } from 'fastify';
import { ERROR_CODES, type ErrorCode, type FieldError, PunctualError, problemType } from '../core/errors.ts';
import { PATTERN_MESSAGES, Problem } from '../core/schemas.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function problemOf(error: PunctualError): Problem {
  const problem: Problem = {
    type: problemType(error.code),
    title: ERROR_CODES[error.code].title,
    status: error.status,
    detail: error.message,
    code: error.code,
  };
  if (error.errors.length > 0) problem.errors = error.errors;
  return problem;
}

export function sendProblem(reply: FastifyReply, error: PunctualError): FastifyReply {
  return reply.status(error.status).type(PROBLEM_CONTENT_TYPE).send(problemOf(error));
}

/** A problem with the body as a whole (JSON pointer ""), rather than with one of its fields. */
export function bodyError(rule: string, message: string): PunctualError {
  return new PunctualError('PUNCTUAL_VALIDATION_FAILED', `request body: ${message}`, [{ field: '', rule, message }]);
}

/** The problem+json responses a route can give, for the OpenAPI document. */
export function problemResponses(...statuses: number[]): Record<number, object> {
  const response = { description: 'A problem (RFC 9457)', content: { [PROBLEM_CONTENT_TYPE]: { schema: Problem } } };
  return Object.fromEntries(statuses.map((status) => [status, response]));
}

/** Fastify's own errors, by code, that are the client's fault. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'PUNCTUAL_MALFORMED_JSON',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'PUNCTUAL_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PUNCTUAL_PAYLOAD_TOO_LARGE',
  // The router refuses path parameters over 100 characters. Every path parameter of this API is
  // a task id (a 36-character UUID), so such a path names no task.
  FST_ERR_MAX_PARAM_LENGTH: 'PUNCTUAL_TASK_NOT_FOUND',
};

const FASTIFY_DETAILS: Partial<Record<ErrorCode, string>> = {
  PUNCTUAL_MALFORMED_JSON: 'the request body is not valid JSON',
  PUNCTUAL_UNSUPPORTED_MEDIA_TYPE: 'send the body as application/json',
  PUNCTUAL_TASK_NOT_FOUND: 'no task has this id',
};

/** Translate anything thrown while serving a request into a PunctualError. */
export function toPunctualError(error: unknown): PunctualError {
  if (error instanceof PunctualError) return error;
  const fastifyError = error as Partial<FastifyError>;
  if (Array.isArray(fastifyError.validation)) {
    return fromValidation(fastifyError.validation, fastifyError.validationContext);
  }
  const code = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (code) {
    const detail = FASTIFY_DETAILS[code] ?? (fastifyError.message || ERROR_CODES[code].title);
    return new PunctualError(code, detail);
  }
  // Other 400s from Fastify (a Content-Length that lies, a URL that does not decode).
  if (fastifyError.statusCode === 400 && fastifyError.code?.startsWith('FST_')) {
    return new PunctualError('PUNCTUAL_BAD_REQUEST', fastifyError.message);
  }
  return new PunctualError('PUNCTUAL_INTERNAL', 'an unexpected error occurred; it has been logged');
}

export function problemErrorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const punctualError = toPunctualError(error);
  if (punctualError.status >= 500) request.log.error({ err: error }, 'request failed');
  return sendProblem(reply, punctualError);
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendProblem(
    reply,
    new PunctualError('PUNCTUAL_ROUTE_NOT_FOUND', `no route for ${request.method} ${request.url}`),
  );
}

/**
 * An ajv failure as one field error. ajv runs with allErrors: false, so it stops at the first
 * failing keyword, except in a union, where it reports every branch and then `anyOf`.
 */
function fromValidation(errors: FastifySchemaValidationError[], context: string | undefined): PunctualError {
  const picked = pickFieldError(errors);
  // Header names are not body fields: point into a "headers" object so the two cannot collide.
  const fieldError = context === 'headers' ? { ...picked, field: `/headers${picked.field}` } : picked;
  const where = context === 'querystring' ? 'query ' : '';
  const at = fieldError.field === '' ? 'request body' : `${where}${fieldError.field}`;
  return new PunctualError('PUNCTUAL_VALIDATION_FAILED', `${at}: ${fieldError.message}`, [fieldError]);
}

function pickFieldError(errors: FastifySchemaValidationError[]): FieldError {
  const union = errors.find((e) => e.keyword === 'anyOf');
  if (union === undefined) return describe(errors[0] as FastifySchemaValidationError);
  // A branch that got past the type check failed for a reason worth naming (a date that is not
  // one, a missing url); if every branch failed on type alone, say which types were allowed.
  const branches = errors.filter((e) => e !== union);
  const specific = branches.find((e) => !(e.keyword === 'type' && e.instancePath === union.instancePath));
  if (specific) return describe(specific);
  const types = branches.map((e) => String(e.params.type));
  return { field: union.instancePath, rule: 'type', message: `must be ${types.join(' or ')}` };
}

function describe(error: FastifySchemaValidationError): FieldError {
  const params = error.params as Record<string, unknown>;
  const path = error.instancePath;
  const propertyName = (error as { propertyName?: string }).propertyName;
  if (propertyName !== undefined) {
    const message = PATTERN_MESSAGES[String(params.pattern)] ?? 'is not a valid name';
    return { field: `${path}/${escapePointer(propertyName)}`, rule: 'propertyNames', message };
  }
  switch (error.keyword) {
    case 'required':
      return {
        field: `${path}/${escapePointer(String(params.missingProperty))}`,
        rule: 'required',
        message: 'is required',
      };
    case 'additionalProperties':
      return {
        field: `${path}/${escapePointer(String(params.additionalProperty))}`,
        rule: 'additionalProperties',
        message: 'is not a known field',
      };
    case 'discriminator': {
      const field = `${path}/${escapePointer(String(params.tag))}`;
      return params.error === 'mapping'
        ? { field, rule: 'enum', message: `${JSON.stringify(params.tagValue)} is not a known type` }
        : { field, rule: 'required', message: 'is required and must be a string' };
    }
    case 'format':
      return { field: path, rule: 'format', message: formatMessage(String(params.format)) };
    case 'enum':
      return { field: path, rule: 'enum', message: `must be one of ${(params.allowedValues as unknown[]).join(', ')}` };
    case 'pattern':
      return {
        field: path,
        rule: 'pattern',
        message: PATTERN_MESSAGES[String(params.pattern)] ?? 'does not match its pattern',
      };
    default:
      return { field: path, rule: error.keyword, message: error.message ?? 'is not valid' };
  }
}

function formatMessage(format: string): string {
  if (format === 'date-time') return 'must be an RFC 3339 date-time with an offset, e.g. 2026-01-01T09:00:00Z';
  if (format === 'uri') return 'must be an absolute URL';
  return `must be a valid ${format}`;
}

/** RFC 6901: "~" and "/" inside a name are escaped. */
function escapePointer(name: string): string {
  return name.replaceAll('~', '~0').replaceAll('/', '~1');
}
