/**
 * The harness protocol (README.md) as the TypeScript side speaks it: the request the driver sends,
 * the events a harness prints, and the record file its handler appends to. Used by the driver
 * (lib/) and by the TypeScript harnesses (node/, punctual/).
 */
import { openSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export type Profile = 'defaults' | 'tuned';
export type Command = 'setup' | 'ingest' | 'enqueue' | 'work';

export interface HarnessRequest<System extends string = string> {
  command: Command;
  system: System;
  profile: Profile;
  schema: string;
  postgresUrl?: string;
  redisUrl?: string;
  count?: number;
  api?: 'single' | 'batch';
  batchSize?: number;
  firstDueAt?: number;
  intervalMs?: number;
  recordFile?: string;
  concurrency?: number;
  handlerMs?: number;
  leaseMs?: number;
}

/** The payload of every task. */
export interface TaskPayload {
  i: number;
  due: number;
}

/**
 * The handler body. Each record is one unbuffered write on an O_APPEND descriptor, so a kill -9
 * loses no line already written and concurrent writers never interleave.
 */
export function taskRunner(recordFile: string, handlerMs = 0): (task: TaskPayload) => Promise<void> {
  const fd = openSync(recordFile, 'a');
  return async (task) => {
    const start = performance.timeOrigin + performance.now();
    writeSync(fd, `${task.i} ${task.due} ${start}\n`);
    if (handlerMs > 0) {
      await sleep(handlerMs);
      // The completion record, which the recovery scenario waits for.
      writeSync(fd, `${task.i} ${task.due} ${start} ${performance.timeOrigin + performance.now()}\n`);
    }
  };
}

/** Progress and library logs: stdout carries only protocol events. */
export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** One protocol event on stdout. */
export function emit(event: object): void {
  writeSync(1, `${JSON.stringify(event)}\n`);
}

/** Exits non-zero with a one-line reason on stderr. */
export function fail(error: unknown): never {
  const reason = error instanceof Error ? error.message : String(error);
  log(`harness: ${reason.replaceAll('\n', ' ')}`);
  process.exit(1);
}
