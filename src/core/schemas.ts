/**
 * The HTTP API's schemas, written once in TypeBox: Fastify validates requests with them, the
 * OpenAPI document publishes them, and `Static<>` gives the handlers their TypeScript types — so
 * the three cannot drift apart.
 *
 * Validation rules worth knowing:
 * - Every object is closed (`additionalProperties: false`): a misspelt field is an error, never
 *   silently dropped.
 * - No coercion: `{"name": 5}` is a type error (the app configures ajv with `coerceTypes: false`).
 * - Query values arrive as strings, so ListQuery declares strings with patterns; the route
 *   converts them.
 * - `date-time` is checked by `isRfc3339` (the app overrides ajv's format with it), so the schema
 *   and the conversion agree on what a date-time with an offset is.
 */
import { type Static, Type } from 'typebox';
import { TASK_STATES } from './task.ts';

export const NAME_MAX_LENGTH = 200;
export const DESCRIPTION_MAX_LENGTH = 10_000;
export const NAMESPACE_PATTERN = '^[a-z0-9][a-z0-9_-]{0,63}$';
export const BATCH_MAX_ITEMS = 1_000;
export const LIST_MAX_LIMIT = 1_000;
export const LIST_DEFAULT_LIMIT = 100;

const NOT_BLANK = '\\S';
const HTTP_URL = '^[hH][tT][tT][pP][sS]?://';
const SINGLE_LINE = '^[^\\r\\n]*$';
// RFC 9110 token: what Node accepts as a header name.
const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
const DIGITS = '^[0-9]{1,7}$';

/** What each pattern means, for error messages a person can act on. */
export const PATTERN_MESSAGES: Record<string, string> = {
  [NOT_BLANK]: 'must not be blank',
  [HTTP_URL]: 'must be an http or https URL',
  [SINGLE_LINE]: 'must not contain line breaks',
  [HEADER_NAME]: 'must be a valid HTTP header name',
  [DIGITS]: 'must be a whole number',
  [NAMESPACE_PATTERN]: 'must be 1 to 64 lowercase letters, digits, "_" or "-", starting with a letter or digit',
};

const DateTime = (description: string) =>
  Type.String({
    format: 'date-time',
    description: `${description} RFC 3339 with an offset, e.g. 2026-01-01T09:00:00Z.`,
  });

const Name = Type.String({
  minLength: 1,
  maxLength: NAME_MAX_LENGTH,
  // At least one non-space character: a name of blanks cannot route to a handler.
  pattern: NOT_BLANK,
  description: 'The handler (or queue) name the task runs under.',
});
const Description = Type.Union([Type.String({ maxLength: DESCRIPTION_MAX_LENGTH }), Type.Null()]);
const Payload = Type.Unknown({
  description: 'Any JSON value, at most 256 KiB serialized; handed to the target as is.',
});
const Namespace = Type.String({ pattern: NAMESPACE_PATTERN, description: 'The tenant; "default" when omitted.' });
const MaxAttempts = Type.Integer({ minimum: 1, maximum: 100, default: 3 });
const TimeoutMs = Type.Integer({ minimum: 100, maximum: 3_600_000, default: 30_000 });
const IDEMPOTENCY_KEY_LENGTH = { minLength: 1, maxLength: 255 } as const;
const IdempotencyKey = Type.String({
  ...IDEMPOTENCY_KEY_LENGTH,
  description: 'Unique per namespace: a replay of the same request returns the first task.',
});

export const HandlerTargetSchema = Type.Object(
  { type: Type.Literal('handler') },
  { additionalProperties: false, description: 'Run by the in-process handler registered under the task name.' },
);

// Written as additionalProperties (not Type.Record's patternProperties) so the OpenAPI document
// can publish it unchanged.
const Headers = Type.Unsafe<Record<string, string>>({
  type: 'object',
  propertyNames: { pattern: HEADER_NAME },
  additionalProperties: Type.String({ maxLength: 8_192, pattern: SINGLE_LINE }),
});

export const HttpTargetSchema = Type.Object(
  {
    type: Type.Literal('http'),
    url: Type.String({ format: 'uri', pattern: HTTP_URL, maxLength: 2_048 }),
    method: Type.Optional(Type.Enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'])),
    headers: Type.Optional(Headers),
    timeout_ms: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 3_600_000,
        description: "Time limit for the request (default and upper bound: the task's timeout_ms).",
      }),
    ),
  },
  { additionalProperties: false, description: 'Call a webhook (POST unless `method` says otherwise); 2xx is success.' },
);

export const KafkaTargetSchema = Type.Object(
  {
    type: Type.Literal('kafka'),
    topic: Type.String({ pattern: '^[A-Za-z0-9._-]+$', minLength: 1, maxLength: 249 }),
    key: Type.Optional(Type.String({ minLength: 1, maxLength: 1_024 })),
    headers: Type.Optional(Headers),
    await_result: Type.Optional(
      Type.Boolean({
        description:
          'Hand the task to a worker: the message carries the lease token, and the task succeeds or fails when the worker reports on the results topic.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: "Publish the payload (JSON) to a Kafka topic at the task's time; key defaults to the task id.",
  },
);

/** As a task name: a task without a target or handler waits in the queue named after it. */
export const QueueName = Type.String({ minLength: 1, maxLength: NAME_MAX_LENGTH, pattern: NOT_BLANK });

export const WorkerTargetSchema = Type.Object(
  { type: Type.Literal('worker'), queue: QueueName },
  {
    additionalProperties: false,
    description: 'Hand the task to a remote worker claiming from `queue` (POST /v1/queues/{queue}/claim).',
  },
);

type TargetInput =
  | Static<typeof HandlerTargetSchema>
  | Static<typeof HttpTargetSchema>
  | Static<typeof KafkaTargetSchema>
  | Static<typeof WorkerTargetSchema>;

/**
 * A discriminated oneOf (ajv `discriminator: true`, also an OpenAPI keyword): ajv validates only the
 * branch `type` names, so an error points at the field that is wrong in that branch instead of a
 * list of every branch that did not match.
 */
export const TaskTargetSchema = Type.Unsafe<TargetInput>({
  type: 'object',
  oneOf: [HandlerTargetSchema, HttpTargetSchema, KafkaTargetSchema, WorkerTargetSchema],
  discriminator: { propertyName: 'type' },
});

export const BackoffInput = Type.Object(
  {
    type: Type.Optional(Type.Literal('exponential')),
    base_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400_000 })),
    factor: Type.Optional(Type.Number({ minimum: 1, maximum: 10 })),
    max_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_592_000_000 })),
    jitter: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, description: 'Merged over the defaults (or, in a PATCH, over the current backoff).' },
);

export const CreateTaskBody = Type.Object(
  {
    name: Name,
    description: Type.Optional(Description),
    scheduled_date: DateTime('When to run.'),
    payload: Type.Optional(Payload),
    target: Type.Optional(TaskTargetSchema),
    deadline: Type.Optional(
      Type.Union([DateTime('After this the task expires instead of running late.'), Type.Null()]),
    ),
    max_attempts: Type.Optional(MaxAttempts),
    timeout_ms: Type.Optional(TimeoutMs),
    backoff: Type.Optional(BackoffInput),
    idempotency_key: Type.Optional(IdempotencyKey),
    namespace: Type.Optional(Namespace),
  },
  { additionalProperties: false },
);
export type CreateTaskBody = Static<typeof CreateTaskBody>;

export const CreateTaskHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      ...IDEMPOTENCY_KEY_LENGTH,
      description: 'Same as the body field `idempotency_key`; if both are given they must match.',
    }),
  ),
});

export const BatchCreateBody = Type.Object(
  { tasks: Type.Array(CreateTaskBody, { minItems: 1, maxItems: BATCH_MAX_ITEMS }) },
  { additionalProperties: false },
);
export type BatchCreateBody = Static<typeof BatchCreateBody>;

export const PatchTaskBody = Type.Object(
  {
    name: Type.Optional(Name),
    description: Type.Optional(Description),
    payload: Type.Optional(Payload),
    target: Type.Optional(Type.Union([TaskTargetSchema, Type.Null()])),
    scheduled_date: Type.Optional(DateTime('When to run.')),
    deadline: Type.Optional(
      Type.Union([DateTime('After this the task expires instead of running late.'), Type.Null()]),
    ),
    max_attempts: Type.Optional(MaxAttempts),
    timeout_ms: Type.Optional(TimeoutMs),
    backoff: Type.Optional(BackoffInput),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type PatchTaskBody = Static<typeof PatchTaskBody>;

export const ListQuery = Type.Object(
  {
    state: Type.Optional(Type.Enum([...TASK_STATES])),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: NAME_MAX_LENGTH })),
    namespace: Type.Optional(Namespace),
    scheduled_after: Type.Optional(DateTime('Inclusive lower bound on the scheduled time.')),
    scheduled_before: Type.Optional(DateTime('Inclusive upper bound on the scheduled time.')),
    limit: Type.Optional(
      Type.String({ pattern: DIGITS, description: `1..${LIST_MAX_LIMIT}, default ${LIST_DEFAULT_LIMIT}.` }),
    ),
    cursor: Type.Optional(Type.String({ maxLength: 512, description: 'The `next_cursor` of the previous page.' })),
  },
  { additionalProperties: false },
);
export type ListQuery = Static<typeof ListQuery>;

export const TaskIdParams = Type.Object({ id: Type.String() });

// ---- remote workers ----

export const QueueParams = Type.Object({ queue: QueueName });

export const CLAIM_MAX = 1_000;
export const CLAIM_MAX_WAIT_MS = 60_000;

export const ClaimBody = Type.Object(
  {
    max: Type.Optional(
      Type.Integer({ minimum: 1, maximum: CLAIM_MAX, default: 1, description: 'Most tasks to take (default 1).' }),
    ),
    wait_ms: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: CLAIM_MAX_WAIT_MS,
        default: 20_000,
        description: 'How long to wait for a task to fall due when none is (default 20,000; 0: answer at once).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ClaimBody = Static<typeof ClaimBody>;

const LeaseToken = Type.String({ minLength: 1, maxLength: 100, description: 'The token the task was claimed with.' });

export const LeaseBody = Type.Object({ lease_token: LeaseToken }, { additionalProperties: false });
export type LeaseBody = Static<typeof LeaseBody>;

export const FailBody = Type.Object(
  {
    lease_token: LeaseToken,
    error: Type.String({ minLength: 1, maxLength: 8_192, description: 'What went wrong (kept as last_error).' }),
    retryable: Type.Optional(
      Type.Boolean({ description: 'false: fail the task now; true (default): retry while attempts are left.' }),
    ),
    retry_after_ms: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 86_400_000, description: 'Wait at least this long before the retry.' }),
    ),
  },
  { additionalProperties: false },
);
export type FailBody = Static<typeof FailBody>;

export const HeartbeatResult = Type.Object({ lease_expires_at: Type.String({ format: 'date-time' }) });

const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);

const BackoffResource = Type.Object({
  type: Type.Literal('exponential'),
  base_ms: Type.Integer(),
  factor: Type.Number(),
  max_ms: Type.Integer(),
  jitter: Type.Boolean(),
});

const taskFields = {
  id: Type.String({ format: 'uuid' }),
  namespace: Type.String(),
  name: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  payload: Type.Unknown(),
  target: Type.Union([TaskTargetSchema, Type.Null()], {
    description:
      'null: the handler registered under the name (a task accepted by a node without one gets a worker target for the queue named after it).',
  }),
  state: Type.Enum([...TASK_STATES]),
  scheduled_date: Timestamp,
  deadline: NullableTimestamp,
  max_attempts: Type.Integer(),
  timeout_ms: Type.Integer(),
  backoff: BackoffResource,
  idempotency_key: Type.Union([Type.String(), Type.Null()]),
  attempts: Type.Integer({ description: 'Claims so far, including the one running.' }),
  lease: Type.Union([Type.Object({ owner: Type.String(), expires_at: Timestamp }), Type.Null()]),
  last_error: Type.Union([Type.String(), Type.Null()]),
  created_at: Timestamp,
  updated_at: Timestamp,
  finished_at: NullableTimestamp,
};

export const TaskResource = Type.Object(taskFields);
export type TaskResource = Static<typeof TaskResource>;

/** A task as a worker claimed it: with the lease token that fences its heartbeats and outcome. */
export const ClaimedTaskResource = Type.Object({ ...taskFields, lease_token: Type.String() });
export type ClaimedTaskResource = Static<typeof ClaimedTaskResource>;

export const ClaimResult = Type.Object({ tasks: Type.Array(ClaimedTaskResource) });
export type ClaimResult = Static<typeof ClaimResult>;

export const AttemptResource = Type.Object({
  attempt: Type.Integer(),
  lease_owner: Type.String(),
  claimed_at: Timestamp,
  started_at: NullableTimestamp,
  ended_at: NullableTimestamp,
  outcome: Type.Union([
    Type.Enum(['succeeded', 'failed', 'retry', 'lease_expired', 'released', 'expired', 'canceled']),
    Type.Null(),
  ]),
  error: Type.Union([Type.String(), Type.Null()]),
});
export type AttemptResource = Static<typeof AttemptResource>;

export const TaskWithAttemptsResource = Type.Object({ ...taskFields, attempt_log: Type.Array(AttemptResource) });
export type TaskWithAttemptsResource = Static<typeof TaskWithAttemptsResource>;

export const TaskList = Type.Object({
  tasks: Type.Array(TaskResource),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'null on the last page.' }),
});
export type TaskList = Static<typeof TaskList>;

export const BatchResult = Type.Object({
  results: Type.Array(
    Type.Object({
      status: Type.Enum(['created', 'existing', 'conflict']),
      task: TaskResource,
    }),
    { description: 'One per input task, in input order.' },
  ),
});
export type BatchResult = Static<typeof BatchResult>;

/** RFC 9457 problem details, with Punctual's stable `code` and the offending fields. */
export const Problem = Type.Object({
  type: Type.String({ format: 'uri' }),
  title: Type.String(),
  status: Type.Integer(),
  detail: Type.String(),
  code: Type.String(),
  errors: Type.Optional(
    Type.Array(
      Type.Object({
        field: Type.String({ description: 'JSON pointer into the request body (or query), e.g. /tasks/3/name.' }),
        rule: Type.String({ description: 'The violated rule: required, type, format, maxLength, ...' }),
        message: Type.String(),
      }),
    ),
  ),
});
export type Problem = Static<typeof Problem>;

export const HealthStatus = Type.Object({ status: Type.Literal('ok') });
