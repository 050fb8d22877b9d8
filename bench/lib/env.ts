/**
 * What a scenario runs against, and cleaning up after it: a fresh store per scenario (a temp
 * SQLite file, removed afterwards), and the PIDs of child processes so that none outlives the
 * bench, even when it is interrupted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/open-store.ts';
import type { TaskStore } from '../../src/store/store.ts';
import { note } from './stats.ts';

export interface FreshStore {
  /** The URL a child service is given. */
  url: string;
  /** The SQLite file, when there is one (for checks after the service has stopped). */
  file: string | undefined;
  open(): Promise<TaskStore>;
  /** Remove what was created (the temp directory). */
  dispose(): void;
}

/** Short name of the store for the report and the results file. */
export function storeLabel(spec: string): string {
  if (spec === 'sqlite') return 'sqlite';
  const colon = spec.indexOf(':');
  return colon > 0 ? spec.slice(0, colon).toLowerCase() : spec;
}

const tempDirs = new Set<string>();
const children = new Set<number>();

export function freshStore(spec: string): FreshStore {
  if (spec === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'punctual-bench-'));
    tempDirs.add(dir);
    const file = join(dir, 'punctual.db');
    return {
      url: `sqlite:${file}`,
      file,
      open: () => openStore(`sqlite:${file}`),
      dispose() {
        rmSync(dir, { recursive: true, force: true });
        tempDirs.delete(dir);
      },
    };
  }
  // A server database cannot be made fresh from here: the caller points us at an empty one.
  return { url: spec, file: undefined, open: () => openStore(spec), dispose() {} };
}

export function trackChild(pid: number): void {
  children.add(pid);
}

export function untrackChild(pid: number): void {
  children.delete(pid);
}

/** Kill every child still alive (by PID) and remove temp dirs: on exit and on Ctrl-C. */
function cleanupNow(): void {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  children.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

export function installCleanup(): void {
  process.on('exit', cleanupNow);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      note(`\n${signal}: stopping child processes and removing temp files`);
      cleanupNow();
      process.exit(130);
    });
  }
}
