/**
 * Conversions between the HTTP API's JSON (snake_case, RFC 3339 strings) and the core task
 * (camelCase, epoch milliseconds). The schemas in core/schemas.ts have already checked shapes and
 * types; what is checked here needs more than one field or more than JSON Schema can say: dates
 * that parse, a deadline not before its time, the payload's serialized size, the URL's scheme.
 *
 * Every error names its field as a JSON pointer from the request root; `at` is the pointer of the
 * task inside the request ("" for a single create, "/tasks/3" in a batch).
 */
import { createHash } from 'node:crypto';
import { PunctualError, validationError } from '../core/errors.ts';
import { isUuid } from '../core/ids.ts';
import type {
  BatchCreateBody,
  CreateTaskBody,
  PatchTaskBody,
  TaskResource,
  TaskWithAttemptsResource,
} from '../core/schemas.ts';
import {
  type Backoff,
  DEFAULT_BACKOFF,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_NAMESPACE,
  DEFAULT_TIMEOUT_MS,
  type NewTask,
  type Task,
  type TaskTarget,
  type TaskWithAttempts,
} from '../core/task.ts';
import { formatRfc3339, parseRfc3339 } from '../core/time.ts';
import type { TaskEdit } from '../store/store.ts';

/** 256 KiB: a payload is a task's arguments, not its data; bigger data belongs in object storage. */
export const PAYLOAD_MAX_BYTES = 256 * 1024;

type BackoffInput = NonNullable<CreateTaskBody['backoff']>;
type TargetInput = NonNullable<CreateTaskBody['target']>;

/**
 * The task a create request describes, under `id`. `idempotencyKey` is the key after the body's
 * and the header's were reconciled (see resolveIdempotencyKey).
 */
export function toNewTask(body: CreateTaskBody, at: string, id: string, idempotencyKey: string | null): NewTask {
  const scheduledAt = parseDate(body.scheduled_date, `${at}/scheduled_date`);
  const deadlineAt = body.deadline == null ? null : parseDate(body.deadline, `${at}/deadline`);
  if (deadlineAt !== null && deadlineAt < scheduledAt) {
    throw validationError(`${at}/deadline`, 'minimum', 'must not be before scheduled_date');
  }
  const payload = body.payload ?? null;
  checkPayloadSize(payload, `${at}/payload`);
  const fields = {
    namespace: body.namespace ?? DEFAULT_NAMESPACE,
    name: body.name,
    description: body.description ?? null,
    payload,
    target: body.target === undefined ? null : toTarget(body.target, `${at}/target`),
    scheduledAt,
    deadlineAt,
    maxAttempts: body.max_attempts ?? DEFAULT_MAX_ATTEMPTS,
    timeoutMs: body.timeout_ms ?? DEFAULT_TIMEOUT_MS,
    backoff: mergeBackoff(DEFAULT_BACKOFF, body.backoff),
  };
  // The hash only tells a replay from a conflicting reuse of a key: without a key it is never read.
  return { id, ...fields, idempotencyKey, requestHash: idempotencyKey === null ? null : requestHash(fields) };
}

/** All tasks of a batch, or the first error: nothing is stored unless every item is valid. */
export function toNewTasks(body: BatchCreateBody, newId: () => string): NewTask[] {
  return body.tasks.map((item, i) => toNewTask(item, `/tasks/${i}`, newId(), item.idempotency_key ?? null));
}

/**
 * The key of a single create: from the body or the `Idempotency-Key` header (the IETF
 * httpapi draft's name); both may be given only if they agree.
 */
export function resolveIdempotencyKey(
  bodyKey: string | undefined,
  header: string | string[] | undefined,
): string | null {
  if (Array.isArray(header)) {
    throw validationError('/headers/idempotency-key', 'maxItems', 'must be given once');
  }
  if (header !== undefined && (header.length < 1 || header.length > 255)) {
    throw validationError(
      '/headers/idempotency-key',
      header.length < 1 ? 'minLength' : 'maxLength',
      'must be 1 to 255 characters',
    );
  }
  if (bodyKey !== undefined && header !== undefined && bodyKey !== header) {
    throw validationError('/idempotency_key', 'const', 'differs from the Idempotency-Key header');
  }
  return bodyKey ?? header ?? null;
}

/**
 * The edit a PATCH describes, checked against the task as it is now: a new deadline is compared
 * with the (possibly new) time, and a partial backoff is merged over the task's current one.
 */
export function toTaskEdit(body: PatchTaskBody, current: Task): TaskEdit {
  const edit: TaskEdit = {};
  if (body.name !== undefined) edit.name = body.name;
  if (body.description !== undefined) edit.description = body.description;
  if (body.payload !== undefined) {
    checkPayloadSize(body.payload, '/payload');
    edit.payload = body.payload;
  }
  if (body.target !== undefined) edit.target = body.target === null ? null : toTarget(body.target, '/target');
  if (body.scheduled_date !== undefined) edit.scheduledAt = parseDate(body.scheduled_date, '/scheduled_date');
  if (body.deadline !== undefined)
    edit.deadlineAt = body.deadline === null ? null : parseDate(body.deadline, '/deadline');
  if (body.max_attempts !== undefined) edit.maxAttempts = body.max_attempts;
  if (body.timeout_ms !== undefined) edit.timeoutMs = body.timeout_ms;
  if (body.backoff !== undefined) edit.backoff = mergeBackoff(current.backoff, body.backoff);

  const scheduledAt = edit.scheduledAt ?? current.scheduledAt;
  const deadlineAt = edit.deadlineAt !== undefined ? edit.deadlineAt : current.deadlineAt;
  if (deadlineAt !== null && deadlineAt < scheduledAt) {
    throw edit.deadlineAt !== undefined
      ? validationError('/deadline', 'minimum', 'must not be before scheduled_date')
      : validationError('/scheduled_date', 'maximum', "must not be after the task's deadline");
  }
  return edit;
}

export function toTaskResource(task: Task): TaskResource {
  return {
    id: task.id,
    namespace: task.namespace,
    name: task.name,
    description: task.description,
    payload: task.payload,
    target: task.target,
    state: task.state,
    scheduled_date: formatRfc3339(task.scheduledAt),
    deadline: nullableDate(task.deadlineAt),
    max_attempts: task.maxAttempts,
    timeout_ms: task.timeoutMs,
    backoff: { ...task.backoff },
    idempotency_key: task.idempotencyKey,
    attempts: task.attempts,
    // The lease token is deliberately absent: it is the holder's capability to complete the task.
    lease:
      task.leaseOwner !== null && task.leaseExpiresAt !== null
        ? { owner: task.leaseOwner, expires_at: formatRfc3339(task.leaseExpiresAt) }
        : null,
    last_error: task.lastError,
    created_at: formatRfc3339(task.createdAt),
    updated_at: formatRfc3339(task.updatedAt),
    finished_at: nullableDate(task.finishedAt),
  };
}

export function toTaskWithAttemptsResource(task: TaskWithAttempts): TaskWithAttemptsResource {
  return {
    ...toTaskResource(task),
    attempt_log: task.attemptLog.map((a) => ({
      attempt: a.attempt,
      lease_owner: a.leaseOwner,
      claimed_at: formatRfc3339(a.claimedAt),
      started_at: nullableDate(a.startedAt),
      ended_at: nullableDate(a.endedAt),
      outcome: a.outcome,
      error: a.error,
    })),
  };
}

/** Where a page ends: the keyset (scheduledAt, id) of its last task, opaque to clients. */
export interface Cursor {
  scheduledAt: number;
  id: string;
}

export function encodeCursor(task: Pick<Task, 'scheduledAt' | 'id'>): string {
  return Buffer.from(JSON.stringify([task.scheduledAt, task.id])).toString('base64url');
}

export function decodeCursor(text: string): Cursor {
  const invalid = () =>
    new PunctualError('PUNCTUAL_INVALID_CURSOR', 'cursor: not a cursor this API returned', [
      { field: '/cursor', rule: 'format', message: 'is not a cursor this API returned' },
    ]);
  // Node's base64url decoder skips characters it does not know; check the alphabet first.
  if (!/^[A-Za-z0-9_-]+$/.test(text)) throw invalid();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(value) || value.length !== 2) throw invalid();
  const [scheduledAt, id] = value as unknown[];
  if (!Number.isSafeInteger(scheduledAt) || typeof id !== 'string' || !isUuid(id)) throw invalid();
  return { scheduledAt: scheduledAt as number, id };
}

/**
 * sha256 of the fields that define the task, in canonical form (keys sorted at every depth,
 * dates as epoch ms, defaults applied), so a replay of the same request hashes the same however
 * its JSON was spelled, and any change to what would run hashes differently.
 */
export function requestHash(fields: Omit<NewTask, 'id' | 'idempotencyKey' | 'requestHash'>): string {
  return createHash('sha256').update(canonicalJson(fields)).digest('hex');
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

function parseDate(text: string, field: string): number {
  const ms = parseRfc3339(text);
  if (ms === null) throw validationError(field, 'format', 'must be an RFC 3339 date-time with an offset');
  return ms;
}

function nullableDate(ms: number | null): string | null {
  return ms === null ? null : formatRfc3339(ms);
}

function checkPayloadSize(payload: unknown, field: string): void {
  let bytes: number;
  try {
    bytes = Buffer.byteLength(JSON.stringify(payload) ?? '');
  } catch {
    // JSON.stringify overflows the stack on pathologically deep nesting.
    throw validationError(field, 'maxDepth', 'is nested too deeply');
  }
  if (bytes > PAYLOAD_MAX_BYTES) {
    const message = `is ${bytes} bytes serialized; at most ${PAYLOAD_MAX_BYTES} are allowed`;
    throw new PunctualError('PUNCTUAL_PAYLOAD_TOO_LARGE', `${field}: ${message}`, [
      { field, rule: 'maxBytes', message },
    ]);
  }
}

function toTarget(target: TargetInput, field: string): TaskTarget {
  if (target.type === 'handler') return { type: 'handler' };
  if (target.type === 'worker') return { type: 'worker', queue: target.queue };
  if (target.type === 'kafka') {
    const result: TaskTarget = { type: 'kafka', topic: target.topic };
    if (target.key !== undefined) result.key = target.key;
    if (target.headers !== undefined) result.headers = { ...target.headers };
    if (target.await_result) result.await_result = true;
    return result;
  }
  let url: URL;
  try {
    url = new URL(target.url);
  } catch {
    throw validationError(`${field}/url`, 'format', 'must be an absolute http or https URL');
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw validationError(`${field}/url`, 'format', 'must be an absolute http or https URL');
  }
  const result: TaskTarget = { type: 'http', url: target.url };
  if (target.method !== undefined) result.method = target.method;
  if (target.headers !== undefined) result.headers = { ...target.headers };
  if (target.timeout_ms !== undefined) result.timeout_ms = target.timeout_ms;
  return result;
}

function mergeBackoff(base: Backoff, input: BackoffInput | undefined): Backoff {
  return {
    type: 'exponential',
    base_ms: input?.base_ms ?? base.base_ms,
    factor: input?.factor ?? base.factor,
    max_ms: input?.max_ms ?? base.max_ms,
    jitter: input?.jitter ?? base.jitter,
  };
}
