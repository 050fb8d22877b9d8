/**
 * Errors from the API, typed by the problem's stable `code` (RFC 9457 problem+json bodies), so
 * callers can `catch (e) { if (e instanceof TaskNotFoundError) … }`.
 */

export interface FieldError {
  /** JSON pointer into the request ("/scheduled_date"). */
  field: string;
  rule: string;
  message: string;
}

export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  code?: string;
  errors?: FieldError[];
}

export class PunctualApiError extends Error {
  readonly status: number;
  /** The stable error code, e.g. PUNCTUAL_VALIDATION_FAILED (see the service's docs/errors.md). */
  readonly code: string;
  readonly problem: Problem;

  constructor(problem: Problem) {
    super(problem.detail ?? problem.title ?? `HTTP ${problem.status}`);
    this.name = new.target.name;
    this.status = problem.status;
    this.code = problem.code ?? `HTTP_${problem.status}`;
    this.problem = problem;
  }
}

export class ValidationError extends PunctualApiError {
  get errors(): FieldError[] {
    return this.problem.errors ?? [];
  }
}
export class UnauthorizedError extends PunctualApiError {}
export class TaskNotFoundError extends PunctualApiError {}
/** The task is not in a state that allows the change, or a lease token is stale. */
export class ConflictError extends PunctualApiError {}
export class IdempotencyConflictError extends PunctualApiError {}
/** A worker's heartbeat or report for a lease it no longer holds: the task was taken over. */
export class LeaseLostError extends ConflictError {}
/** 503: the store is down or the service is stopping; retrying later may succeed. */
export class ServiceUnavailableError extends PunctualApiError {}

/** The client never reached the service, or the request timed out. */
export class NetworkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NetworkError';
  }
}

export function errorFor(problem: Problem): PunctualApiError {
  switch (problem.code) {
    case 'PUNCTUAL_VALIDATION_FAILED':
    case 'PUNCTUAL_MALFORMED_JSON':
    case 'PUNCTUAL_INVALID_CURSOR':
      return new ValidationError(problem);
    case 'PUNCTUAL_UNAUTHORIZED':
      return new UnauthorizedError(problem);
    case 'PUNCTUAL_TASK_NOT_FOUND':
      return new TaskNotFoundError(problem);
    case 'PUNCTUAL_IDEMPOTENCY_CONFLICT':
      return new IdempotencyConflictError(problem);
    case 'PUNCTUAL_INVALID_STATE':
      return new ConflictError(problem);
    case 'PUNCTUAL_LEASE_LOST':
      return new LeaseLostError(problem);
  }
  if (problem.status === 503) return new ServiceUnavailableError(problem);
  if (problem.status === 409) return new ConflictError(problem);
  return new PunctualApiError(problem);
}
