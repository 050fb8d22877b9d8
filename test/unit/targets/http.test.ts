import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pkg from '../../../package.json' with { type: 'json' };
import type { HttpTarget, Task } from '../../../src/core/task.ts';
import { parseAllowList } from '../../../src/targets/address-guard.ts';
import { HttpWebhookTarget, parseRetryAfter } from '../../../src/targets/http.ts';
import type { RunContext } from '../../../src/targets/target.ts';
import { type Receiver, startReceiver } from '../../helpers/http-receiver.ts';
import { makeTask } from '../../helpers/task-factory.ts';

/** The test receivers listen on loopback, which webhooks reach only when allowed. */
const LOCAL = { allowPrivate: parseAllowList('127.0.0.1') };

let receiver: Receiver;
beforeEach(async () => {
  receiver = await startReceiver();
});
afterEach(async () => {
  await receiver.close();
});

function httpTask(target: Partial<HttpTarget> = {}, overrides: Partial<Task> = {}): Task {
  return makeTask({ target: { type: 'http', url: `${receiver.url}/hook`, ...target }, ...overrides });
}

function ctx(overrides: Partial<RunContext> = {}): RunContext {
  return { attempt: 1, idempotencyKey: 'key-1', signal: new AbortController().signal, ...overrides };
}

describe('HttpWebhookTarget request', () => {
  it('POSTs the task as JSON with the Punctual headers', async () => {
    const scheduledAt = Date.UTC(2026, 2, 1, 12, 0, 0, 250);
    const task = httpTask(
      { headers: { authorization: 'Bearer t0ken', 'x-extra': 'yes' } },
      { name: 'send-invoice', description: 'monthly', payload: { invoice: 42 }, scheduledAt },
    );
    const result = await new HttpWebhookTarget(LOCAL).run(task, ctx({ attempt: 3, idempotencyKey: 'idem-9' }));

    expect(result).toEqual({ ok: true });
    expect(receiver.requests).toHaveLength(1);
    const [req] = receiver.requests;
    expect(req?.method).toBe('POST');
    expect(req?.path).toBe('/hook');
    expect(req?.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': `punctual/${pkg.version}`,
      'punctual-task-id': task.id,
      'punctual-task-name': 'send-invoice',
      'punctual-attempt': '3',
      'idempotency-key': 'idem-9',
      'punctual-scheduled-at': '2026-03-01T12:00:00.250Z',
      authorization: 'Bearer t0ken',
      'x-extra': 'yes',
    });
    expect(req?.body).toEqual({
      id: task.id,
      name: 'send-invoice',
      description: 'monthly',
      payload: { invoice: 42 },
      scheduled_date: '2026-03-01T12:00:00.250Z',
      attempt: 3,
    });
  });

  it('uses the method of the target and sends no body on GET', async () => {
    await new HttpWebhookTarget(LOCAL).run(httpTask({ method: 'GET' }), ctx());
    await new HttpWebhookTarget(LOCAL).run(httpTask({ method: 'PUT' }), ctx());
    expect(receiver.requests.map((r) => r.method)).toEqual(['GET', 'PUT']);
    expect(receiver.requests[0]?.rawBody).toBe('');
    expect(receiver.requests[1]?.body).toMatchObject({ attempt: 1 });
  });

  it('keeps its own headers over the task headers of the same name', async () => {
    const task = httpTask({ headers: { 'Punctual-Attempt': '99', 'user-agent': 'spoof' } });
    await new HttpWebhookTarget({ ...LOCAL, userAgent: 'custom/1' }).run(task, ctx({ attempt: 2 }));
    expect(receiver.requests[0]?.headers['punctual-attempt']).toBe('2');
    expect(receiver.requests[0]?.headers['user-agent']).toBe('custom/1');
  });
});

describe('HttpWebhookTarget results', () => {
  it('treats 200 and 204 as success', async () => {
    const target = new HttpWebhookTarget(LOCAL);
    expect(await target.run(httpTask(), ctx())).toEqual({ ok: true });
    receiver.setResponder(() => ({ status: 204 }));
    expect(await target.run(httpTask(), ctx())).toEqual({ ok: true });
  });

  it('retries a 500 and quotes the start of the body', async () => {
    receiver.setResponder(() => ({ status: 500, body: { error: 'database down' } }));
    const result = await new HttpWebhookTarget(LOCAL).run(httpTask(), ctx());
    expect(result).toEqual({
      ok: false,
      retryable: true,
      error: 'HTTP 500 Internal Server Error: {"error":"database down"}',
    });
  });

  it('retries a 408', async () => {
    receiver.setResponder(() => ({ status: 408 }));
    expect(await new HttpWebhookTarget(LOCAL).run(httpTask(), ctx())).toEqual({
      ok: false,
      retryable: true,
      error: 'HTTP 408 Request Timeout',
    });
  });

  it('reads Retry-After in seconds on a 503', async () => {
    receiver.setResponder(() => ({ status: 503, headers: { 'retry-after': '120' } }));
    const result = await new HttpWebhookTarget(LOCAL).run(httpTask(), ctx());
    expect(result).toEqual({
      ok: false,
      retryable: true,
      error: 'HTTP 503 Service Unavailable',
      retryAfterMs: 120_000,
    });
  });

  it('reads Retry-After as an HTTP-date on a 429', async () => {
    const at = new Date(Date.now() + 90_000).toUTCString();
    receiver.setResponder(() => ({ status: 429, headers: { 'retry-after': at } }));
    const result = await new HttpWebhookTarget(LOCAL).run(httpTask(), ctx());
    expect(result).toMatchObject({ ok: false, retryable: true, error: 'HTTP 429 Too Many Requests' });
    const retryAfterMs = result.ok ? 0 : (result.retryAfterMs ?? 0);
    // HTTP-dates have whole seconds, so up to 1 s is lost to truncation and a little to the round trip.
    expect(retryAfterMs).toBeGreaterThan(85_000);
    expect(retryAfterMs).toBeLessThanOrEqual(90_000);
  });

  it('ignores Retry-After on other statuses', async () => {
    receiver.setResponder(() => ({ status: 500, headers: { 'retry-after': '5' } }));
    const result = await new HttpWebhookTarget(LOCAL).run(httpTask(), ctx());
    expect(result).not.toHaveProperty('retryAfterMs');
  });

  it('fails a 404 for good', async () => {
    receiver.setResponder(() => ({ status: 404, body: 'no such hook' }));
    expect(await new HttpWebhookTarget(LOCAL).run(httpTask(), ctx())).toEqual({
      ok: false,
      retryable: false,
      error: 'HTTP 404 Not Found: no such hook',
    });
  });

  it('does not follow a 301', async () => {
    receiver.setResponder((req) =>
      req.path === '/hook' ? { status: 301, headers: { location: '/elsewhere' } } : { status: 200 },
    );
    const result = await new HttpWebhookTarget(LOCAL).run(httpTask(), ctx());
    expect(result).toEqual({
      ok: false,
      retryable: false,
      error: 'redirects are not followed: HTTP 301 Moved Permanently (location: /elsewhere)',
    });
    expect(receiver.requests.map((r) => r.path)).toEqual(['/hook']);
  });

  it('cuts the quoted body at 200 characters', async () => {
    receiver.setResponder(() => ({ status: 400, body: 'é'.repeat(500) }));
    const result = await new HttpWebhookTarget(LOCAL).run(httpTask(), ctx());
    expect(result).toEqual({ ok: false, retryable: false, error: `HTTP 400 Bad Request: ${'é'.repeat(200)}` });
  });
});

describe('HttpWebhookTarget failures before a status', () => {
  it('retries when the signal aborts, with the reason the dispatcher gave', async () => {
    receiver.setResponder(() => ({ status: 200, delayMs: 10_000 }));
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('timeout after 50 ms')), 50);
    const started = Date.now();
    const result = await new HttpWebhookTarget(LOCAL).run(httpTask(), ctx({ signal: controller.signal }));
    expect(result).toEqual({ ok: false, retryable: true, error: 'timeout after 50 ms' });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('names the task timeout when the signal carries no reason', async () => {
    receiver.setResponder(() => ({ status: 200, delayMs: 10_000 }));
    const task = httpTask({}, { timeoutMs: 40 });
    const result = await new HttpWebhookTarget(LOCAL).run(task, ctx({ signal: AbortSignal.timeout(40) }));
    expect(result).toEqual({ ok: false, retryable: true, error: 'timeout after 40 ms' });
  });

  it('retries when the connection is refused', async () => {
    const closed = await startReceiver();
    await closed.close();
    const task = makeTask({ target: { type: 'http', url: `${closed.url}/hook` } });
    const result = await new HttpWebhookTarget(LOCAL).run(task, ctx());
    expect(result).toMatchObject({ ok: false, retryable: true });
    expect(result.ok ? '' : result.error).toMatch(/^connection refused \(connect ECONNREFUSED 127\.0\.0\.1:\d+\)$/);
  });

  it('fails for good on a URL or header no retry can fix', async () => {
    const target = new HttpWebhookTarget(LOCAL);
    expect(await target.run(makeTask({ target: { type: 'http', url: 'ftp://example.com/x' } }), ctx())).toEqual({
      ok: false,
      retryable: false,
      error: 'invalid http target: unsupported protocol ftp:',
    });
    const badHeader = await target.run(httpTask({ headers: { 'x-bad': 'a\nb' } }), ctx());
    expect(badHeader).toMatchObject({ ok: false, retryable: false });
    expect(receiver.requests).toHaveLength(0);
  });

  it('fails for good on a task without an http target', async () => {
    expect(await new HttpWebhookTarget(LOCAL).run(makeTask(), ctx())).toEqual({
      ok: false,
      retryable: false,
      error: 'the task has no http target',
    });
  });
});

describe('HttpWebhookTarget response bodies', () => {
  it('stops reading an endless body at maxResponseBytes', async () => {
    let sent = 0;
    const endless = new Readable({
      read() {
        sent += 16_384;
        this.push(Buffer.alloc(16_384, 'x'));
      },
    });
    receiver.setResponder(() => ({ status: 500, body: endless }));
    const result = await new HttpWebhookTarget({ ...LOCAL, maxResponseBytes: 100_000 }).run(httpTask(), ctx());
    expect(result).toEqual({ ok: false, retryable: true, error: `HTTP 500 Internal Server Error: ${'x'.repeat(200)}` });
    await once(endless, 'close');
    // Socket buffers hold some bytes in flight, but nowhere near an endless stream.
    expect(sent).toBeLessThan(20_000_000);
  });

  it('succeeds on a 2xx whose body breaks off', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('partial');
      setTimeout(() => res.destroy(), 20);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      const task = makeTask({ target: { type: 'http', url: `http://127.0.0.1:${port}/` } });
      expect(await new HttpWebhookTarget(LOCAL).run(task, ctx())).toEqual({ ok: true });
    } finally {
      server.close();
    }
  });
});

describe('HttpWebhookTarget time limit', () => {
  it("aborts a request that outlives the target's timeout_ms, retryably, naming the limit", async () => {
    const server = createServer((_req, res) => {
      setTimeout(() => res.writeHead(200).end(), 3_000).unref();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      const task = makeTask({ target: { type: 'http', url: `http://127.0.0.1:${port}/`, timeout_ms: 200 } });
      const started = Date.now();
      const result = await new HttpWebhookTarget(LOCAL).run(task, ctx());
      expect(result).toEqual({ ok: false, retryable: true, error: 'webhook timeout after 200 ms' });
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2026, 0, 1, 0, 0, 0);
  it('reads seconds, HTTP-dates and nothing else', () => {
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter(' 30 ', now)).toBe(30_000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('-5', now)).toBeNull();
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(null, now)).toBeNull();
  });
});
