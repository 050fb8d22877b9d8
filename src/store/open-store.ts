/**
 * Opens (and migrates) the store named by a URL such as `sqlite:./punctual.db` or
 * `postgres://punctual@db:5432/punctual?schema=punctual`. Each scheme maps
 * to an opener, so a new driver is one more entry in the table.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DynamoStore } from './dynamodb/dynamodb-store.ts';
import { PostgresStore } from './postgres/postgres-store.ts';
import { ThreadedSqliteStore } from './sqlite/threaded-sqlite-store.ts';
import type { TaskStore } from './store.ts';

export interface OpenOptions {
  /**
   * Create what the store needs (`punctual migrate`). SQL stores migrate on every open anyway; a
   * DynamoDB table is only ever created when asked, and its absence is an error otherwise.
   */
  create?: boolean;
}

type Opener = (location: string, options: OpenOptions) => Promise<TaskStore>;

const OPENERS: Record<string, Opener> = {
  sqlite: openSqlite,
  postgres: (location) => openPostgres(`postgres:${location}`),
  postgresql: (location) => openPostgres(`postgresql:${location}`),
  dynamodb: (location, options) => DynamoStore.open({ url: `dynamodb:${location}`, create: options.create }),
};

/**
 * The SQLite file a `sqlite:` URL names. Liberal: `sqlite:./a.db`, `sqlite:/abs/a.db`,
 * `sqlite://./a.db`, `sqlite:///abs/a.db` and `sqlite::memory:` (or `sqlite://:memory:`) all work.
 */
export function sqlitePathFromLocation(location: string): string {
  const path = location.startsWith('//') ? location.slice(2) : location;
  if (path === '')
    throw new Error('The sqlite store URL names no file: use e.g. sqlite:./punctual.db or sqlite::memory:');
  return path;
}

async function openSqlite(location: string): Promise<TaskStore> {
  const path = sqlitePathFromLocation(location);
  if (path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true });
  const store = ThreadedSqliteStore.open({ path });
  try {
    await store.migrate();
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

/** `postgres://user@host:port/database[?schema=NAME&pool=N]`: migrated, LISTEN/NOTIFY checked. */
function openPostgres(url: string): Promise<TaskStore> {
  return PostgresStore.open({ url });
}

export async function openStore(url: string, options: OpenOptions = {}): Promise<TaskStore> {
  const colon = url.indexOf(':');
  const scheme = colon > 0 ? url.slice(0, colon).toLowerCase() : '';
  const opener = OPENERS[scheme];
  if (!opener) {
    // Name only the scheme: a database URL may carry credentials.
    const supported = Object.keys(OPENERS)
      .map((s) => `${s}:`)
      .join(', ');
    const given = scheme === '' ? 'a URL without a scheme' : `"${scheme}:"`;
    throw new Error(`Unsupported store URL scheme: got ${given}; supported schemes are ${supported}`);
  }
  return opener(url.slice(colon + 1), options);
}
