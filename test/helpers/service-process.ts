/**
 * Runs the real `punctual serve` as a child process on a free loopback port, for end-to-end,
 * crash and downtime tests. The port is read from the service's own "listening" log line.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const BIN = resolve(import.meta.dirname, '../../bin/punctual.js');

/** Services still running: killed when the test process exits, so a timed-out test leaves none behind. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface ServiceProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  logs: string[];
  /** Resolves with the exit code (or the signal name) once the process has ended. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

export interface ServiceOptions {
  /** Store URL; default a fresh SQLite file. */
  store?: string;
  handlers?: string;
  args?: string[];
  env?: Record<string, string>;
}

export function tempDbUrl(): string {
  return `sqlite:${join(mkdtempSync(join(tmpdir(), 'punctual-e2e-')), 'punctual.db')}`;
}

/** Starts the service and resolves once it listens (its "listening" line is logged at info level). */
export async function startService(options: ServiceOptions = {}, timeoutMs = 30_000): Promise<ServiceProcess> {
  const launched = launchService(options);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, fail) => {
    timer = setTimeout(() => {
      launched.child.kill('SIGKILL');
      fail(new Error(`punctual did not listen within ${timeoutMs} ms:\n${launched.logs.join('\n')}`));
    }, timeoutMs);
  });
  try {
    const url = await Promise.race([launched.listening, timedOut]);
    return { ...launched, url };
  } finally {
    clearTimeout(timer);
  }
}

/** Starts the service without waiting for it to listen (it may die before, on purpose). */
export function launchService(
  options: ServiceOptions = {},
): Omit<ServiceProcess, 'url'> & { listening: Promise<string> } {
  const args = [BIN, 'serve', '--port', '0', '--store', options.store ?? tempDbUrl()];
  if (options.handlers) args.push('--handlers', options.handlers);
  args.push(...(options.args ?? []));
  const child = spawn(process.execPath, args, {
    // Test receivers listen on loopback, which webhooks may not reach unless allowed.
    env: { ...process.env, PUNCTUAL_LOG_LEVEL: 'info', PUNCTUAL_ALLOW_PRIVATE_TARGETS: '127.0.0.1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const logs: string[] = [];
  const exited = new Promise<number | string>((done) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      done(code ?? signal ?? 'unknown');
    });
  });
  const listening = new Promise<string>((done, fail) => {
    let buffered = '';
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString();
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        logs.push(line);
        const match = /"port":(\d+)/.exec(line);
        if (match && line.includes('listening')) done(`http://127.0.0.1:${match[1]}`);
        newline = buffered.indexOf('\n');
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => logs.push(chunk.toString()));
    void exited.then((code) => fail(new Error(`punctual exited (${code}) before listening:\n${logs.join('\n')}`)));
  });
  listening.catch(() => {}); // a caller that only awaits `exited` must not see an unhandled rejection
  return {
    listening,
    pid: child.pid as number,
    child,
    logs,
    exited,
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      child.kill(signal);
      return exited;
    },
  };
}

/** JSON over fetch, returning status and parsed body. */
export async function api<T = any>(
  base: string,
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: T; headers: Headers }> {
  const response = await fetch(base + path, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: init.body === undefined ? init.headers : { 'content-type': 'application/json', ...init.headers },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}
