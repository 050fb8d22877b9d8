/**
 * The systems under test and how the driver talks to their harnesses (../README.md): run a
 * command to its `done` event, or start a worker and wait for `ready`. Every child is tracked by
 * PID (bench/lib/env.ts), so none outlives the driver.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { trackChild, untrackChild } from '../../lib/env.ts';
import type { HarnessRequest, Profile } from '../protocol.ts';

export type { HarnessRequest, Profile };

export const PEERS_DIR = join(import.meta.dirname, '..');

export type Family = 'punctual' | 'node' | 'river' | 'db-scheduler';
export type StoreKind = 'sqlite' | 'postgres' | 'redis';

export interface SystemDef {
  name: string;
  family: Family;
  store: StoreKind;
  /** Punctual has one profile (its defaults); `tuned` runs the same settings. */
  profiles: Profile[];
}

export const SYSTEMS: SystemDef[] = [
  { name: 'punctual-sqlite', family: 'punctual', store: 'sqlite', profiles: ['defaults'] },
  { name: 'punctual-postgres', family: 'punctual', store: 'postgres', profiles: ['defaults'] },
  { name: 'graphile-worker', family: 'node', store: 'postgres', profiles: ['defaults', 'tuned'] },
  { name: 'pg-boss', family: 'node', store: 'postgres', profiles: ['defaults', 'tuned'] },
  { name: 'bullmq', family: 'node', store: 'redis', profiles: ['defaults', 'tuned'] },
  { name: 'river', family: 'river', store: 'postgres', profiles: ['defaults', 'tuned'] },
  { name: 'db-scheduler', family: 'db-scheduler', store: 'postgres', profiles: ['defaults', 'tuned'] },
];

export const isPunctual = (system: string): boolean => system.startsWith('punctual-');

/** The program and arguments of a family's harness. */
function commandOf(family: Family, json: string): [string, string[]] {
  switch (family) {
    case 'punctual':
      return [process.execPath, [join(PEERS_DIR, 'punctual', 'harness.ts'), json]];
    case 'node':
      return [process.execPath, [join(PEERS_DIR, 'node', 'harness.ts'), json]];
    case 'river':
      return [join(PEERS_DIR, 'river', 'bin', 'harness'), [json]];
    case 'db-scheduler':
      return ['java', ['-jar', join(PEERS_DIR, 'db-scheduler', 'target', 'harness.jar'), json]];
  }
}

/** Builds a family's harness: null when built, else the reason it is skipped. */
export function build(family: Family): string | null {
  if (family === 'punctual') return null;
  const script = join(PEERS_DIR, family, 'build.sh');
  const result = spawnSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.status === 0) return null;
  const message = `${result.stderr ?? ''}${result.stdout ?? ''}`.trim().split('\n').slice(-3).join(' ');
  return result.status === 3 ? message : `build.sh failed (exit ${result.status}): ${message}`;
}

/** The pinned version of each peer, read from its harness's manifest. */
export function peerVersions(): Record<string, string> {
  const versions: Record<string, string> = {};
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return '';
    }
  };
  const nodeDeps = JSON.parse(read(join(PEERS_DIR, 'node', 'package.json')) || '{}').dependencies ?? {};
  for (const name of ['graphile-worker', 'pg-boss', 'bullmq', 'ioredis']) versions[name] = nodeDeps[name] ?? '?';
  versions.river =
    /github\.com\/riverqueue\/river (v[\w.-]+)/.exec(read(join(PEERS_DIR, 'river', 'go.mod')))?.[1] ?? '?';
  versions['db-scheduler'] =
    /<db-scheduler\.version>([^<]+)</.exec(read(join(PEERS_DIR, 'db-scheduler', 'pom.xml')))?.[1] ?? '?';
  versions.punctual = JSON.parse(read(join(PEERS_DIR, '..', '..', 'package.json')) || '{}').version ?? '?';
  return versions;
}

interface Running {
  child: ChildProcess;
  /** Resolves with the first stdout event of the given kind. */
  event(kind: string): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
  stderrTail(): string;
}

function launch(family: Family, request: HarnessRequest): Running {
  const [program, args] = commandOf(family, JSON.stringify(request));
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid !== undefined) trackChild(child.pid);
  const tail: string[] = [];
  const waiters = new Map<string, (event: Record<string, unknown>) => void>();
  const seen = new Map<string, Record<string, unknown>>();
  let buffer = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    let newline = buffer.indexOf('\n');
    while (newline >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf('\n');
      if (!line.startsWith('{')) continue;
      try {
        const event = JSON.parse(line) as Record<string, unknown>;
        const kind = String(event.event);
        seen.set(kind, event);
        waiters.get(kind)?.(event);
      } catch {
        // not an event
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    for (const line of chunk.split('\n')) {
      if (line.trim() === '') continue;
      tail.push(line);
      if (tail.length > 20) tail.shift();
    }
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (error) => {
      tail.push(String(error));
      resolve(-1);
    });
    child.on('exit', (code, signal) => {
      if (child.pid !== undefined) untrackChild(child.pid);
      resolve(signal ? null : code);
    });
  });
  return {
    child,
    exited,
    stderrTail: () => tail.slice(-5).join(' | '),
    event(kind) {
      const already = seen.get(kind);
      if (already) return Promise.resolve(already);
      return new Promise((resolve) => waiters.set(kind, resolve));
    },
  };
}

function timeout(ms: number): Promise<'timeout'> {
  return new Promise((resolve) => setTimeout(() => resolve('timeout'), ms).unref());
}

/** setup / ingest / enqueue: runs to exit; the `done` event (if any). Throws on failure or timeout. */
export async function runCommand(
  family: Family,
  request: HarnessRequest,
  timeoutMs: number,
): Promise<{ done?: Record<string, unknown>; timedOut: boolean }> {
  const run = launch(family, request);
  let done: Record<string, unknown> | undefined;
  void run.event('done').then((event) => {
    done = event;
  });
  const outcome = await Promise.race([run.exited, timeout(timeoutMs)]);
  if (outcome === 'timeout') {
    killNow(run.child);
    await run.exited;
    return { done, timedOut: true };
  }
  if (outcome !== 0) {
    throw new Error(`${request.system} ${request.command} exited ${outcome}: ${run.stderrTail()}`);
  }
  return { done, timedOut: false };
}

export interface Worker {
  pid: number;
  /** kill -9, at once. */
  kill(): void;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  exited: Promise<number | null>;
  stderrTail(): string;
}

function killNow(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, 'SIGKILL');
  } catch {
    // gone
  }
}

/** work: resolves once the harness printed `ready` (throws if it exits or takes over `readyMs`). */
export async function startWorker(family: Family, request: HarnessRequest, readyMs = 60_000): Promise<Worker> {
  const run = launch(family, request);
  const worker: Worker = {
    pid: run.child.pid ?? -1,
    exited: run.exited,
    stderrTail: run.stderrTail,
    kill: () => killNow(run.child),
    async stop(graceMs = 20_000) {
      if (run.child.exitCode !== null || run.child.signalCode !== null) return;
      try {
        process.kill(worker.pid, 'SIGTERM');
      } catch {
        return;
      }
      if ((await Promise.race([run.exited, timeout(graceMs)])) === 'timeout') {
        killNow(run.child);
        await run.exited;
      }
    },
  };
  const outcome = await Promise.race([
    run.event('ready'),
    run.exited.then((code) => ({ exited: code })),
    timeout(readyMs),
  ]);
  if (outcome === 'timeout' || 'exited' in outcome) {
    killNow(run.child);
    await run.exited;
    throw new Error(
      `${request.system} work ${outcome === 'timeout' ? `not ready in ${readyMs} ms` : `exited ${String(outcome.exited)}`}: ${run.stderrTail()}`,
    );
  }
  return worker;
}
