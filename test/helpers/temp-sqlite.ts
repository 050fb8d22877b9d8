/** A fresh migrated SQLite store in its own temp directory, removed on cleanup. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';

export async function tempSqliteStore(): Promise<{ store: SqliteStore; path: string; cleanup(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'punctual-store-'));
  const path = join(dir, 'tasks.db');
  const store = SqliteStore.open({ path });
  await store.migrate();
  return {
    store,
    path,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
