export { PunctualClient, type PunctualClientOptions } from './client.ts';
export {
  ConflictError,
  type FieldError,
  IdempotencyConflictError,
  LeaseLostError,
  NetworkError,
  type Problem,
  PunctualApiError,
  ServiceUnavailableError,
  TaskNotFoundError,
  UnauthorizedError,
  ValidationError,
} from './errors.ts';
export { DEFAULT_TOLERANCE_SECONDS, type VerifySignatureOptions, verifySignature } from './signature.ts';
export type * from './types.ts';
export { PermanentError, Worker, type WorkerContext, type WorkerHandler, type WorkerOptions } from './worker.ts';
