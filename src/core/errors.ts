/**
 * Errors with stable codes. Each code maps to an HTTP status and a problem+json `type`
 * (RFC 9457); docs/errors.md lists them all and a test keeps the two in sync.
 */
export const ERROR_CODES = {
  PUNCTUAL_VALIDATION_FAILED: { status: 400, title: 'The request is not valid' },
  PUNCTUAL_MALFORMED_JSON: { status: 400, title: 'The request body is not valid JSON' },
  PUNCTUAL_BAD_REQUEST: { status: 400, title: 'The request could not be read' },
  PUNCTUAL_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'The request body must be application/json' },
  PUNCTUAL_PAYLOAD_TOO_LARGE: { status: 413, title: 'The request body is too large' },
  PUNCTUAL_UNAUTHORIZED: { status: 401, title: 'A valid API key is required' },
  PUNCTUAL_TASK_NOT_FOUND: { status: 404, title: 'No task has this id' },
  PUNCTUAL_ROUTE_NOT_FOUND: { status: 404, title: 'No such route' },
  PUNCTUAL_INVALID_STATE: { status: 409, title: 'The task is not in a state that allows this' },
  PUNCTUAL_LEASE_LOST: { status: 409, title: "The lease token is not the task's current lease" },
  PUNCTUAL_IDEMPOTENCY_CONFLICT: { status: 409, title: 'The idempotency key was used for a different request' },
  PUNCTUAL_INVALID_CURSOR: { status: 400, title: 'The pagination cursor is not valid' },
  PUNCTUAL_STORE_UNAVAILABLE: { status: 503, title: 'The task store is unavailable' },
  PUNCTUAL_SHUTTING_DOWN: { status: 503, title: 'The service is shutting down' },
  PUNCTUAL_NOT_READY: { status: 503, title: 'The service is not ready' },
  PUNCTUAL_INTERNAL: { status: 500, title: 'Internal error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export const PROBLEM_TYPE_BASE = 'https://punctual.dev/problems/';

export function problemType(code: ErrorCode): string {
  return (
    PROBLEM_TYPE_BASE +
    code
      .replace(/^PUNCTUAL_/, '')
      .toLowerCase()
      .replaceAll('_', '-')
  );
}

/** One offending field: `field` is a JSON pointer into the request ("/scheduled_date"). */
export interface FieldError {
  field: string;
  rule: string;
  message: string;
}

export class PunctualError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly errors: FieldError[];
  constructor(code: ErrorCode, detail?: string, errors: FieldError[] = []) {
    super(detail ?? ERROR_CODES[code].title);
    this.name = 'PunctualError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.errors = errors;
  }
}

export function validationError(field: string, rule: string, message: string): PunctualError {
  return new PunctualError('PUNCTUAL_VALIDATION_FAILED', `${field}: ${message}`, [{ field, rule, message }]);
}
