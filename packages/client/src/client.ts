/**
 * PunctualClient: the HTTP API from TypeScript.
 *
 *   const punctual = new PunctualClient({ url: 'http://127.0.0.1:8080', apiKey: process.env.PUNCTUAL_KEY });
 *   const task = await punctual.create({ name: 'send-email', scheduled_date: new Date(Date.now() + 60_000) });
 *
 * Every method resolves with the API's JSON or throws a typed error (errors.ts). Dates may be
 * given as Date objects; they are sent as RFC 3339 strings.
 */
import { errorFor, NetworkError, type Problem } from './errors.ts';
import type {
  BatchResult,
  ClaimedTask,
  ListQuery,
  Task,
  TaskChanges,
  TaskInput,
  TaskPage,
  TaskWithAttempts,
} from './types.ts';

export interface PunctualClientOptions {
  /** The service's base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  /** Sent as `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** Per request (default 10,000 ms). */
  timeoutMs?: number;
}

export class PunctualClient {
  private readonly base: string;
  private readonly apiKey: string | undefined;
  private readonly timeoutMs: number;

  constructor(options: PunctualClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Schedules one task; durable when this resolves. A replayed idempotency key returns the first task. */
  create(task: TaskInput): Promise<Task> {
    return this.call('POST', '/v1/tasks', withDates(task));
  }

  /** Up to 1,000 tasks in one transaction; one result per task, in order. */
  async createBatch(tasks: TaskInput[]): Promise<BatchResult[]> {
    const body = await this.call<{ results: BatchResult[] }>('POST', '/v1/tasks/batch', {
      tasks: tasks.map(withDates),
    });
    return body.results;
  }

  get(id: string): Promise<TaskWithAttempts> {
    return this.call('GET', `/v1/tasks/${encodeURIComponent(id)}`);
  }

  /** One page, in scheduled order; pass `next_cursor` back as `cursor` for the next. */
  list(query: ListQuery = {}): Promise<TaskPage> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) params.set(key, value instanceof Date ? value.toISOString() : String(value));
    }
    const search = params.size > 0 ? `?${params}` : '';
    return this.call('GET', `/v1/tasks${search}`);
  }

  /** Every task matching the query, page after page. */
  async *listAll(query: Omit<ListQuery, 'cursor'> = {}): AsyncGenerator<Task> {
    let cursor: string | undefined;
    do {
      const page = await this.list({ ...query, cursor });
      yield* page.tasks;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  cancel(id: string): Promise<Task> {
    return this.call('POST', `/v1/tasks/${encodeURIComponent(id)}/cancel`);
  }

  /** Moves a scheduled task to a new time. */
  reschedule(id: string, scheduledDate: string | Date): Promise<Task> {
    return this.update(id, { scheduled_date: scheduledDate });
  }

  /** Edits a scheduled task. */
  update(id: string, changes: TaskChanges): Promise<Task> {
    return this.call('PATCH', `/v1/tasks/${encodeURIComponent(id)}`, withDates(changes));
  }

  /** Runs a failed task again, with a fresh set of attempts. */
  retry(id: string): Promise<Task> {
    return this.call('POST', `/v1/tasks/${encodeURIComponent(id)}/retry`);
  }

  /** Runs a scheduled task now. */
  runNow(id: string): Promise<Task> {
    return this.call('POST', `/v1/tasks/${encodeURIComponent(id)}/run`);
  }

  // ---- the worker protocol (the Worker class drives these) ----

  /**
   * Claims up to `max` due tasks from `queue`, waiting up to `waitMs` (default 20,000) for one to
   * fall due. Each comes leased to the caller, with its `lease_token`.
   */
  async claim(
    queue: string,
    options: { max?: number; waitMs?: number; signal?: AbortSignal } = {},
  ): Promise<ClaimedTask[]> {
    const waitMs = options.waitMs ?? 20_000;
    const body = await this.call<{ tasks: ClaimedTask[] }>(
      'POST',
      `/v1/queues/${encodeURIComponent(queue)}/claim`,
      { max: options.max ?? 1, wait_ms: waitMs },
      { timeoutMs: waitMs + this.timeoutMs, signal: options.signal },
    );
    return body.tasks;
  }

  /** Extends the lease of a claimed task; resolves with its new end. LeaseLostError once it is gone. */
  async heartbeat(id: string, leaseToken: string): Promise<Date> {
    const body = await this.call<{ lease_expires_at: string }>(
      'POST',
      `/v1/tasks/${encodeURIComponent(id)}/heartbeat`,
      {
        lease_token: leaseToken,
      },
    );
    return new Date(body.lease_expires_at);
  }

  /** Reports a claimed task done. */
  async complete(id: string, leaseToken: string): Promise<void> {
    await this.call('POST', `/v1/tasks/${encodeURIComponent(id)}/complete`, { lease_token: leaseToken });
  }

  /** Reports a claimed task's attempt failed; retried by its backoff unless `retryable` is false. */
  async fail(
    id: string,
    leaseToken: string,
    failure: { error: string; retryable?: boolean; retryAfterMs?: number },
  ): Promise<void> {
    await this.call('POST', `/v1/tasks/${encodeURIComponent(id)}/fail`, {
      lease_token: leaseToken,
      error: failure.error,
      retryable: failure.retryable,
      retry_after_ms: failure.retryAfterMs,
    });
  }

  private async call<T>(
    method: string,
    path: string,
    body?: unknown,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: anyOf(AbortSignal.timeout(options.timeoutMs ?? this.timeoutMs), options.signal),
      });
    } catch (error) {
      throw new NetworkError(`${method} ${path}: ${(error as Error).message}`, { cause: error });
    }
    const text = await response.text();
    const parsed = text === '' ? undefined : safeJson(text);
    if (response.ok) return parsed as T;
    const problem: Problem =
      typeof parsed === 'object' && parsed !== null
        ? { status: response.status, ...(parsed as Partial<Problem>) }
        : { status: response.status, detail: text.slice(0, 200) || response.statusText };
    throw errorFor(problem);
  }
}

function anyOf(signal: AbortSignal, other: AbortSignal | undefined): AbortSignal {
  return other ? AbortSignal.any([signal, other]) : signal;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Date values as RFC 3339 strings, top-level fields only (the API has no nested dates). */
function withDates<T extends object>(input: T): T {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) out[key] = value instanceof Date ? value.toISOString() : value;
  return out as T;
}
