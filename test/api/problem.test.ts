import type { FastifySchemaValidationError } from 'fastify';
import { describe, expect, it } from 'vitest';
import { problemOf, toPunctualError } from '../../src/api/problem.ts';
import { PunctualError, validationError } from '../../src/core/errors.ts';

/** A Fastify validation error as the framework raises it. */
function validation(errors: Partial<FastifySchemaValidationError>[], context = 'body') {
  return Object.assign(new Error('validation'), {
    code: 'FST_ERR_VALIDATION',
    statusCode: 400,
    validation: errors.map((e) => ({ schemaPath: '#', params: {}, message: 'm', ...e })),
    validationContext: context,
  });
}

function fastifyError(code: string, statusCode: number) {
  return Object.assign(new Error(`fastify says ${code}`), { code, statusCode });
}

describe('toPunctualError', () => {
  it('keeps a PunctualError as it is', () => {
    const error = validationError('/name', 'required', 'is required');
    expect(toPunctualError(error)).toBe(error);
  });

  it.each([
    ['FST_ERR_CTP_INVALID_JSON_BODY', 400, 'PUNCTUAL_MALFORMED_JSON'],
    ['FST_ERR_CTP_INVALID_MEDIA_TYPE', 415, 'PUNCTUAL_UNSUPPORTED_MEDIA_TYPE'],
    ['FST_ERR_CTP_BODY_TOO_LARGE', 413, 'PUNCTUAL_PAYLOAD_TOO_LARGE'],
    ['FST_ERR_MAX_PARAM_LENGTH', 414, 'PUNCTUAL_TASK_NOT_FOUND'],
    ['FST_ERR_CTP_INVALID_CONTENT_LENGTH', 400, 'PUNCTUAL_BAD_REQUEST'],
    ['FST_ERR_BAD_URL', 400, 'PUNCTUAL_BAD_REQUEST'],
  ])('maps %s to %s', (code, status, expected) => {
    expect(toPunctualError(fastifyError(code, status)).code).toBe(expected);
  });

  it('turns anything else into PUNCTUAL_INTERNAL without its message', () => {
    const error = toPunctualError(new TypeError('secret path /srv/db.sqlite is broken'));
    expect(error.code).toBe('PUNCTUAL_INTERNAL');
    expect(error.status).toBe(500);
    expect(error.message).not.toContain('secret');
    expect(toPunctualError('a string').code).toBe('PUNCTUAL_INTERNAL');
  });
});

describe('validation errors', () => {
  const fieldOf = (error: ReturnType<typeof validation>) => toPunctualError(error).errors[0];

  it('names a missing or unknown property by its own pointer', () => {
    expect(
      fieldOf(validation([{ keyword: 'required', instancePath: '/tasks/3', params: { missingProperty: 'name' } }])),
    ).toEqual({
      field: '/tasks/3/name',
      rule: 'required',
      message: 'is required',
    });
    expect(
      fieldOf(
        validation([{ keyword: 'additionalProperties', instancePath: '', params: { additionalProperty: 'a/b~c' } }]),
      ),
    ).toMatchObject({
      field: '/a~1b~0c',
      rule: 'additionalProperties',
    });
  });

  it('points query and header errors at their parameter', () => {
    const query = toPunctualError(
      validation([{ keyword: 'pattern', instancePath: '/limit', params: { pattern: '^[0-9]{1,7}$' } }], 'querystring'),
    );
    expect(query.errors[0]).toEqual({ field: '/limit', rule: 'pattern', message: 'must be a whole number' });
    expect(query.message).toBe('query /limit: must be a whole number');
    const header = toPunctualError(
      validation([{ keyword: 'maxLength', instancePath: '/idempotency-key', params: { limit: 255 } }], 'headers'),
    );
    expect(header.errors[0]?.field).toBe('/headers/idempotency-key');
  });

  it('in a union, reports the branch that got past the type check', () => {
    const error = validation([
      { keyword: 'format', instancePath: '/deadline', params: { format: 'date-time' } },
      { keyword: 'type', instancePath: '/deadline', params: { type: 'null' } },
      { keyword: 'anyOf', instancePath: '/deadline', params: {} },
    ]);
    expect(fieldOf(error)).toMatchObject({ field: '/deadline', rule: 'format' });
  });

  it('in a union where every branch failed on type, lists the types', () => {
    const error = validation([
      { keyword: 'type', instancePath: '/description', params: { type: 'string' } },
      { keyword: 'type', instancePath: '/description', params: { type: 'null' } },
      { keyword: 'anyOf', instancePath: '/description', params: {} },
    ]);
    expect(fieldOf(error)).toEqual({ field: '/description', rule: 'type', message: 'must be string or null' });
  });

  it('names the discriminator property of a target', () => {
    expect(
      fieldOf(
        validation([{ keyword: 'discriminator', instancePath: '/target', params: { error: 'tag', tag: 'type' } }]),
      ),
    ).toMatchObject({
      field: '/target/type',
      rule: 'required',
    });
    expect(
      fieldOf(
        validation([
          {
            keyword: 'discriminator',
            instancePath: '/target',
            params: { error: 'mapping', tag: 'type', tagValue: 'x' },
          },
        ]),
      ),
    ).toMatchObject({ field: '/target/type', rule: 'enum' });
  });
});

describe('problemOf', () => {
  it('builds an RFC 9457 body with the stable code', () => {
    expect(problemOf(new PunctualError('PUNCTUAL_TASK_NOT_FOUND', 'no task has this id'))).toEqual({
      type: 'https://punctual.dev/problems/task-not-found',
      title: 'No task has this id',
      status: 404,
      detail: 'no task has this id',
      code: 'PUNCTUAL_TASK_NOT_FOUND',
    });
    expect(problemOf(validationError('/name', 'required', 'is required')).errors).toEqual([
      { field: '/name', rule: 'required', message: 'is required' },
    ]);
  });
});
