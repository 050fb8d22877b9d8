/**
 * A real webhook receiver on loopback for tests: records every request and answers as scripted.
 */
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The body parsed as JSON; undefined when it is empty or not JSON (see rawBody). */
  body: unknown;
  rawBody: string;
  receivedAt: number;
}

export interface ScriptedResponse {
  status: number;
  headers?: Record<string, string>;
  /** A string or bytes as is, a Readable streamed (for endless bodies), anything else as JSON. */
  body?: unknown;
  /** Wait this long before answering, to play a slow receiver. */
  delayMs?: number;
}

/** `attemptIndex` counts earlier requests with the same punctual-task-id header: 0 for the first. */
export type Responder = (req: ReceivedRequest, attemptIndex: number) => ScriptedResponse | Promise<ScriptedResponse>;

export interface Receiver {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  setResponder(fn: Responder): void;
  /** Resolves once `count` requests have arrived in total. */
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface ReceiverOptions {
  responder?: Responder;
}

const ok: Responder = () => ({ status: 200 });

export async function startReceiver(options: ReceiverOptions = {}): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const arrivals = new EventEmitter();
  const attemptsByTask = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  let responder = options.responder ?? ok;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const rawBody = Buffer.concat(chunks).toString('utf8');
    const received: ReceivedRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      body: parseJson(rawBody),
      rawBody,
      receivedAt: Date.now(),
    };
    const taskId = String(req.headers['punctual-task-id'] ?? '');
    const attemptIndex = attemptsByTask.get(taskId) ?? 0;
    attemptsByTask.set(taskId, attemptIndex + 1);
    requests.push(received);
    arrivals.emit('request');

    const scripted = await responder(received, attemptIndex);
    if (scripted.delayMs !== undefined) {
      await new Promise<void>((done) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          done();
        }, scripted.delayMs);
        timers.add(timer);
      });
    }
    if (res.destroyed) return; // the client gave up while we waited
    res.writeHead(scripted.status, scripted.headers);
    const { body } = scripted;
    if (body instanceof Readable) {
      body.pipe(res);
      res.once('close', () => body.destroy());
    } else if (body === undefined) res.end();
    else if (typeof body === 'string' || body instanceof Uint8Array) res.end(body);
    else res.end(JSON.stringify(body));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setResponder(fn) {
      responder = fn;
    },
    waitFor(count, timeoutMs = 5_000) {
      if (requests.length >= count) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const onRequest = (): void => {
          if (requests.length < count) return;
          clearTimeout(timer);
          arrivals.off('request', onRequest);
          resolve();
        };
        const timer = setTimeout(() => {
          arrivals.off('request', onRequest);
          reject(new Error(`expected ${count} requests within ${timeoutMs} ms, ${requests.length} arrived`));
        }, timeoutMs);
        arrivals.on('request', onRequest);
      });
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      // Keep-alive and stalled connections would hold close() open.
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
