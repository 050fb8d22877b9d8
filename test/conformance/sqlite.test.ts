/** Runs the shared TaskStore conformance suite against SQLite, plus the SQLite-only checks. */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open-store.ts';
import { readMigrations, runMigrations } from '../../src/store/sqlite/migrations.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { describeTaskStoreConformance } from './task-store.conformance.ts';

function tempPath(): string {
  return join(tmpdir(), `punctual-test-${process.pid}-${randomUUID()}`, 'punctual.db');
}

/** Removes the database file's directory, WAL and shared-memory files included. */
function removeDatabase(path: string): void {
  rmSync(join(path, '..'), { recursive: true, force: true });
}

describeTaskStoreConformance('sqlite', async () => {
  const path = tempPath();
  mkdirSync(join(path, '..'), { recursive: true });
  const store = SqliteStore.open({ path });
  await store.migrate();
  return {
    store,
    cleanup: async () => {
      await store.close();
      removeDatabase(path);
    },
  };
});

// What `punctual serve` runs: the same driver on its own thread (openStore's choice).
describeTaskStoreConformance('sqlite on a worker thread', async () => {
  const path = tempPath();
  const store = await openStore(`sqlite:${path}`);
  return {
    store,
    cleanup: async () => {
      await store.close();
      removeDatabase(path);
    },
  };
});

describe('openStore', () => {
  const opened: { close(): Promise<void> }[] = [];
  const paths: string[] = [];
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    for (const path of paths.splice(0)) removeDatabase(path);
  });

  it.each([
    ['sqlite:', ''],
    ['sqlite://', ''],
    ['SQLite:', ''],
  ])('opens %s<absolute path>, creating the missing directory, migrated', async (prefix) => {
    const path = tempPath();
    paths.push(path);
    const store = await openStore(`${prefix}${path}`);
    opened.push(store);
    expect(existsSync(path)).toBe(true);
    expect(await store.taskCountByState()).toMatchObject({ scheduled: 0 });
  });

  it('opens relative paths against the working directory', async () => {
    const path = tempPath();
    paths.push(path);
    const dir = relative(process.cwd(), join(path, '..'));
    for (const url of [`sqlite:./${dir}/a.db`, `sqlite://./${dir}/b.db`, `sqlite:${dir}/c.db`])
      opened.push(await openStore(url));
    for (const file of ['a.db', 'b.db', 'c.db']) expect(existsSync(join(path, '..', file))).toBe(true);
  });

  it.each(['sqlite::memory:', 'sqlite://:memory:'])('opens %s in memory', async (url) => {
    const store = await openStore(url);
    opened.push(store);
    expect(await store.taskCountByState()).toMatchObject({ running: 0 });
  });

  it('names the supported schemes for an unknown one, without echoing the URL', async () => {
    await expect(openStore('mysql://user:secret@host/db')).rejects.toThrow(/"mysql:".*sqlite:/);
    await expect(openStore('mysql://user:secret@host/db')).rejects.not.toThrow(/secret/);
    await expect(openStore('./punctual.db')).rejects.toThrow(/supported schemes are sqlite:/);
  });

  it('rejects a sqlite URL without a path', async () => {
    await expect(openStore('sqlite:')).rejects.toThrow(/names no file/);
  });
});

describe('sqlite migrations', () => {
  const paths: string[] = [];
  afterEach(() => {
    for (const path of paths.splice(0)) removeDatabase(path);
  });

  it('applies each migration once, however often the file is reopened', async () => {
    const path = tempPath();
    paths.push(path);
    const versions = readMigrations().map((m) => m.version);
    expect(versions.length).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) await (await openStore(`sqlite:${path}`)).close();

    const db = new Database(path);
    try {
      const rows = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all();
      expect(rows).toEqual(versions.map((version) => ({ version })));
      expect(runMigrations(db)).toEqual([]);
    } finally {
      db.close();
    }
  });

  it('keeps data across reopening', async () => {
    const path = tempPath();
    paths.push(path);
    const first = await openStore(`sqlite:${path}`);
    const now = Date.UTC(2026, 11, 1);
    await first.taskCreate({
      tasks: [
        {
          id: randomUUID(),
          namespace: 'default',
          name: 'n',
          description: null,
          payload: null,
          target: null,
          scheduledAt: now,
          deadlineAt: null,
          maxAttempts: 3,
          timeoutMs: 1_000,
          backoff: { type: 'exponential', base_ms: 1, factor: 2, max_ms: 10, jitter: false },
          idempotencyKey: null,
          requestHash: null,
        },
      ],
      now,
    });
    await first.close();
    const second = await openStore(`sqlite:${path}`);
    expect((await second.taskCountByState()).scheduled).toBe(1);
    await second.close();
  });

  it('leaves the file in WAL mode', async () => {
    const path = tempPath();
    paths.push(path);
    await (await openStore(`sqlite:${path}`)).close();
    const db = new Database(path);
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
  });
});

describe('sqlite on a worker thread', () => {
  it('refuses calls once closed, instead of hanging', async () => {
    const path = tempPath();
    const store = await openStore(`sqlite:${path}`);
    await store.close();
    await expect(store.taskGet({ id: 'x' })).rejects.toThrow(/closed/);
    removeDatabase(path);
  });

  it('carries the error of a failed call back to the caller', async () => {
    const path = tempPath();
    const store = await openStore(`sqlite:${path}`);
    const tooMany = Array.from({ length: 1_001 }, () => ({}) as never);
    await expect(store.taskCreate({ tasks: tooMany, now: 0 })).rejects.toMatchObject({ name: 'RangeError' });
    await store.close();
    removeDatabase(path);
  });
});
