/**
 * The TaskStore contract: everything the rest of Punctual asks of a database.
 *
 * Rules every driver keeps (the conformance suite in test/conformance checks each one):
 * - Operations are noun-first and take one params object. Every operation that depends on time
 *   takes an optional `now` (epoch ms): tests set it instead of sleeping; left out, the store uses
 *   its own clock — for a database server, the server's clock, so that nodes whose clocks
 *   disagree still agree on when a lease has expired.
 * - Each operation is atomic: the state change and its event rows commit together or not at all.
 * - Completions, releases and lease-holder edits are fenced by the lease token: a caller holding an
 *   old lease changes nothing, and learns so from the result.
 * - Drivers declare what they can do in `capabilities` instead of callers checking their type.
 */
import type { Backoff, NewTask, Task, TaskEvent, TaskState, TaskTarget, TaskWithAttempts } from '../core/task.ts';

export interface StoreCapabilities {
  /** The driver can wake other nodes when tasks become available (LISTEN/NOTIFY and the like). */
  supportsNotify: boolean;
  /** The most tasks one `taskCreate` call accepts. */
  maxBatchSize: number;
  /**
   * How many tasks a dispatcher claims at most per call unless told otherwise: enough to spread a
   * claim's round trip and commit over many tasks, few enough that the claim does not hold the
   * store's writer (SQLite) or its row locks for long.
   */
  claimBatchSize: number;
  /**
   * The store keeps time by a server's clock, not this process's: nodes align their timers to it
   * (see dispatch/store-clock.ts). False for an embedded store, whose clock is the process's.
   */
  serverClock: boolean;
  /** `eventList` works: the store keeps one table-wide event log in commit order. */
  eventLog: boolean;
  /** Tasks with a worker target wait in their queue, claimed only with `queues` (remote workers). */
  workerQueues: boolean;
}

/** How long a lease lasts: from the task's time (or now, if later) for its timeout plus this grace. */
export interface LeaseTerms {
  owner: string;
  graceMs: number;
}

export interface TaskCreateParams {
  tasks: NewTask[];
  now?: number;
  /**
   * Create-and-claim: tasks due within `lookaheadMs` of now are inserted already running, leased
   * to `lease.owner` (at most `max` of them), so the node that received them fires them with no
   * poll delay and no second write. Tasks for a worker queue are never claimed here: they wait for
   * a claim that asks for their queue.
   */
  claim?: { lease: LeaseTerms; lookaheadMs: number; max: number };
}

export type TaskCreateResult =
  | { status: 'created'; task: Task; claimed: boolean }
  /** The idempotency key was seen with the same request: the first task is returned. */
  | { status: 'existing'; task: Task }
  /** The idempotency key was seen with a different request. */
  | { status: 'conflict'; task: Task };

export interface TaskClaimDueParams {
  lease: LeaseTerms;
  now?: number;
  /** Claim tasks scheduled before now + lookaheadMs. */
  lookaheadMs: number;
  /** Most tasks without a queue to claim. */
  limit: number;
  /**
   * Worker queues to claim from as well, each up to its own limit (the workers waiting on it).
   * Tasks in a queue not listed here are left alone, lapsed leases included.
   */
  queues?: QueueDemand[];
}

export interface QueueDemand {
  queue: string;
  limit: number;
}

export interface TaskClaimDueResult {
  /** The store's time this claim was judged at (read at the start of the statement). */
  now: number;
  /** Now running, leased to the caller, `attempts` already counted. Oldest first. */
  claimed: Task[];
  /** Tasks ended instead of claimed: deadline passed, or attempts used up by crashed runs. */
  ended: Task[];
}

/** A lease the caller holds. */
export interface LeaseRef {
  id: string;
  leaseToken: string;
}

interface OutcomeBase extends LeaseRef {
  startedAt: number;
  endedAt: number;
}
export type TaskOutcome =
  | (OutcomeBase & { kind: 'succeeded' })
  | (OutcomeBase & { kind: 'retry'; error: string; retryAt: number })
  | (OutcomeBase & { kind: 'failed'; error: string })
  | (OutcomeBase & { kind: 'expired' });

export interface TaskCompleteParams {
  outcomes: TaskOutcome[];
  now?: number;
}

/** `applied: false` means the lease was lost (fenced): the outcome changed nothing. */
export interface TaskCompleteResult {
  id: string;
  applied: boolean;
}

/** Extend a lease: it then ends no earlier than `extendMs` after now (never sooner than it did). */
export interface LeaseExtension extends LeaseRef {
  extendMs: number;
}

export interface TaskHeartbeatParams {
  leases: LeaseExtension[];
  now?: number;
}

/** `applied: false`: the lease was lost (fenced); `leaseExpiresAt` is the new end when applied. */
export interface TaskHeartbeatResult {
  id: string;
  applied: boolean;
  leaseExpiresAt: number | null;
}

export interface TaskReleaseParams {
  leases: LeaseRef[];
  now?: number;
}

export type TaskChangeResult =
  | { status: 'ok'; task: Task }
  | { status: 'not_found' }
  | { status: 'invalid_state'; task: Task };

export interface TaskCancelParams {
  id: string;
  now?: number;
  /** A task still waiting in its holder's timer (running, not started) may be canceled by its holder. */
  leaseToken?: string;
}

export interface TaskEdit {
  name?: string;
  description?: string | null;
  payload?: unknown;
  target?: TaskTarget | null;
  scheduledAt?: number;
  deadlineAt?: number | null;
  maxAttempts?: number;
  timeoutMs?: number;
  backoff?: Backoff;
}

export interface TaskUpdateParams {
  id: string;
  now?: number;
  changes: TaskEdit;
  /** As for cancel: the holder of a not-yet-started lease may edit; the lease is then released. */
  leaseToken?: string;
}

export interface TaskIdParams {
  id: string;
  now?: number;
}

export interface TaskListParams {
  namespace?: string;
  state?: TaskState;
  name?: string;
  /** Inclusive bounds on scheduledAt. */
  scheduledAfter?: number;
  scheduledBefore?: number;
  limit: number;
  /** Keyset pagination: list tasks strictly after this (scheduledAt, id). */
  after?: { scheduledAt: number; id: string };
}

export interface EventListParams {
  afterSeq: number;
  limit: number;
}

/**
 * The lease on an outbox cursor (the Kafka event relay's place in the event log): one node per
 * cluster holds it and publishes; `ttlMs: 0` gives it up so another node may take it at once.
 */
export interface OutboxLeaseParams {
  name: string;
  owner: string;
  ttlMs: number;
  now?: number;
}

export interface OutboxCursor {
  /** True when `owner` holds the lease now. */
  held: boolean;
  /** The last seq published (0 before the first). */
  seq: number;
}

export interface OutboxAdvanceParams {
  name: string;
  owner: string;
  seq: number;
}

export interface TaskStore {
  readonly capabilities: StoreCapabilities;

  /** The store's clock, read as cheaply as possible (nodes align their timers to it). */
  timeNow(): Promise<number>;

  /** Apply pending schema migrations. Safe to call on every start, and from several nodes. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  /** Insert tasks in one transaction (each with a 'created' event), honouring idempotency keys. */
  taskCreate(params: TaskCreateParams): Promise<TaskCreateResult[]>;
  taskGet(params: { id: string }): Promise<TaskWithAttempts | null>;
  taskList(params: TaskListParams): Promise<Task[]>;
  taskCountByState(): Promise<Record<TaskState, number>>;

  /**
   * Claim due tasks oldest first: `scheduled` ones due before `until`, and `running` ones whose
   * lease expired before `now` (their holder died: the expired attempt is recorded as
   * `lease_expired`). Counts an attempt per claim; ends tasks past their deadline (`expired`) and
   * crashed tasks that have used all their attempts (`failed`) instead of claiming them.
   */
  taskClaimDue(params: TaskClaimDueParams): Promise<TaskClaimDueResult>;
  /** Apply outcomes in one transaction, each fenced by its lease token. */
  taskComplete(params: TaskCompleteParams): Promise<TaskCompleteResult[]>;
  /** Give back leases never started (shutdown): back to scheduled, the attempt not counted. */
  taskRelease(params: TaskReleaseParams): Promise<TaskCompleteResult[]>;
  /**
   * Extend leases still held (a worker's heartbeat on a long task), each fenced by its token. No
   * event is written: the task's state does not change.
   */
  taskHeartbeat(params: TaskHeartbeatParams): Promise<TaskHeartbeatResult[]>;

  /** scheduled → canceled (or running → canceled for the holder of a not-yet-started lease). */
  taskCancel(params: TaskCancelParams): Promise<TaskChangeResult>;
  /** Edit or reschedule a scheduled task (or a not-yet-started one, by its holder). */
  taskUpdate(params: TaskUpdateParams): Promise<TaskChangeResult>;
  /** failed → scheduled now, with a fresh set of attempts. */
  taskRetry(params: TaskIdParams): Promise<TaskChangeResult>;
  /** scheduled → scheduled now. */
  taskRunNow(params: TaskIdParams): Promise<TaskChangeResult>;

  /** One task's events, oldest first (its history). */
  taskEvents(params: { id: string }): Promise<TaskEvent[]>;

  /** The outbox: events in commit order, after a sequence number (when `capabilities.eventLog`). */
  eventList(params: EventListParams): Promise<TaskEvent[]>;
  /** Take or renew the lease on an outbox cursor, or learn who holds it (when `capabilities.eventLog`). */
  outboxLease(params: OutboxLeaseParams): Promise<OutboxCursor>;
  /** Move an outbox cursor forward (never back); false when `owner` no longer holds it. */
  outboxAdvance(params: OutboxAdvanceParams): Promise<boolean>;

  /**
   * Present when `capabilities.supportsNotify`: calls `listener` (on every node) when tasks become
   * schedulable — created unclaimed, released, retried, run now, rescheduled — with the earliest
   * time among them, so a node wakes for a task due before its next poll. After a gap in which
   * notifications may have been lost (the listening connection broke), listeners are called with
   * -Infinity: anything may be due. Returns an unsubscribe.
   */
  onTasksAvailable?(listener: (earliestDueAt: number) => void): () => void;
}

/** When the lease on a task claimed at `now` ends. Shared so every driver computes it alike. */
export function leaseExpiry(task: Pick<Task, 'scheduledAt' | 'timeoutMs'>, now: number, graceMs: number): number {
  return Math.max(task.scheduledAt, now) + task.timeoutMs + graceMs;
}
