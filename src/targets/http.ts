/**
 * The webhook target: sends the task to a URL and reads the status code as the attempt's result.
 */
import pkg from '../../package.json' with { type: 'json' };
import type { HttpTarget, Task } from '../core/task.ts';
import { formatRfc3339 } from '../core/time.ts';
import { abortMessage } from './handler.ts';
import type { RunContext, Target, TargetResult } from './target.ts';

export interface HttpWebhookTargetOptions {
  userAgent?: string;
  /** Most bytes of a response body read before the stream is canceled. */
  maxResponseBytes?: number;
}

const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;
const ERROR_BODY_CHARS = 200;
/** A UTF-8 character takes at most 4 bytes, so these bytes always hold the first 200 characters. */
const ERROR_BODY_BYTES = ERROR_BODY_CHARS * 4;

const NETWORK_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'DNS lookup failed',
  EAI_AGAIN: 'DNS lookup failed (temporary)',
  ETIMEDOUT: 'connect timeout',
  UND_ERR_CONNECT_TIMEOUT: 'connect timeout',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_SOCKET: 'connection closed by the server',
};

export class HttpWebhookTarget implements Target {
  private readonly userAgent: string;
  private readonly maxResponseBytes: number;

  constructor(options: HttpWebhookTargetOptions = {}) {
    this.userAgent = options.userAgent ?? `punctual/${pkg.version}`;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  }

  async run(task: Task, ctx: RunContext): Promise<TargetResult> {
    const target = task.target;
    if (target?.type !== 'http') return permanent('the task has no http target');
    let request: { url: URL; init: RequestInit };
    try {
      request = this.buildRequest(task, target, ctx);
    } catch (err) {
      // A bad URL or header cannot get better on retry.
      return permanent(`invalid http target: ${messageOf(err)}`);
    }

    let response: Response;
    try {
      response = await fetch(request.url, request.init);
    } catch (err) {
      if (ctx.signal.aborted) return retryable(abortMessage(ctx.signal, task));
      return retryable(networkErrorText(err));
    }

    const head = await this.drain(response);
    const { status } = response;
    // A 2xx means the receiver took the task, even if its body then broke off.
    if (status >= 200 && status < 300) return { ok: true };

    const error = statusErrorText(response, head);
    if (status >= 300 && status < 400) {
      const location = response.headers.get('location');
      return permanent(`redirects are not followed: ${error}${location ? ` (location: ${location})` : ''}`);
    }
    if (status >= 500 || status === 408 || status === 429) {
      const retryAfterMs =
        status === 429 || status === 503 ? parseRetryAfter(response.headers.get('retry-after')) : null;
      return retryAfterMs === null ? retryable(error) : { ok: false, retryable: true, error, retryAfterMs };
    }
    return permanent(error);
  }

  private buildRequest(task: Task, target: HttpTarget, ctx: RunContext): { url: URL; init: RequestInit } {
    const url = new URL(target.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`unsupported protocol ${url.protocol}`);
    const method = target.method ?? 'POST';
    // The task's headers go first so they cannot overwrite the ones receivers rely on.
    const headers = new Headers(target.headers);
    headers.set('user-agent', this.userAgent);
    headers.set('punctual-task-id', task.id);
    headers.set('punctual-task-name', task.name);
    headers.set('punctual-attempt', String(ctx.attempt));
    headers.set('idempotency-key', ctx.idempotencyKey);
    headers.set('punctual-scheduled-at', formatRfc3339(task.scheduledAt));
    const init: RequestInit = { method, headers, redirect: 'manual', signal: ctx.signal };
    if (method !== 'GET') {
      headers.set('content-type', 'application/json');
      init.body = JSON.stringify({
        id: task.id,
        name: task.name,
        description: task.description,
        payload: task.payload,
        scheduled_date: formatRfc3339(task.scheduledAt),
        attempt: ctx.attempt,
      });
    }
    return { url, init };
  }

  /**
   * Reads the body to free the connection, up to maxResponseBytes so a huge or endless response
   * cannot exhaust memory, and keeps only its first bytes for error texts.
   */
  private async drain(response: Response): Promise<Uint8Array> {
    if (!response.body) return new Uint8Array(0);
    const reader = response.body.getReader();
    const head = new Uint8Array(Math.min(ERROR_BODY_BYTES, this.maxResponseBytes));
    let headLength = 0;
    let total = 0;
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        if (headLength < head.length) {
          const part = value.subarray(0, head.length - headLength);
          head.set(part, headLength);
          headLength += part.length;
        }
        total += value.length;
        if (total >= this.maxResponseBytes) {
          await reader.cancel();
          break;
        }
      }
    } catch {
      // Reset or aborted mid-body: the status already decided the result.
    }
    return head.subarray(0, headLength);
  }
}

function statusErrorText(response: Response, head: Uint8Array): string {
  const status = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  const text = new TextDecoder().decode(head).replace(/\s+/g, ' ').trim();
  const snippet = [...text].slice(0, ERROR_BODY_CHARS).join('');
  return snippet === '' ? status : `${status}: ${snippet}`;
}

/** Retry-After is delay-seconds or an HTTP-date (RFC 9110 §10.2.3); anything else is ignored. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // Every HTTP-date form opens with a day name; the check keeps Date.parse's leniency ("-5" is a year) out.
  if (!/^[A-Za-z]{3,9},? /.test(text)) return null;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** fetch reports every network failure as TypeError("fetch failed"); the cause says which one. */
function networkErrorText(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : undefined;
  const known = code === undefined ? undefined : NETWORK_ERRORS[code];
  if (known !== undefined) return `${known} (${messageOf(cause)})`;
  return `request failed: ${messageOf(cause)}`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function retryable(error: string): TargetResult {
  return { ok: false, retryable: true, error };
}

function permanent(error: string): TargetResult {
  return { ok: false, retryable: false, error };
}
