/**
 * The PostgreSQL migration runner: applies the `NNN_name.sql` files of ./migrations whose number
 * is not yet in the schema's `schema_migrations`, in order, in one transaction.
 *
 * Several nodes may start together: the transaction first takes an advisory lock for the schema
 * (released at commit), so one node applies the migrations while the others wait, then find
 * nothing left to do. DDL is transactional in PostgreSQL: a migration that fails leaves nothing
 * behind. (A future migration that cannot run in a transaction, such as CREATE INDEX
 * CONCURRENTLY, will need a runner change.)
 */
import { join } from 'node:path';
import type pg from 'pg';
import { type Migration, readMigrations } from '../sqlite/migrations.ts';
import { quoteIdentifier } from './connection-config.ts';

export const POSTGRES_MIGRATIONS_DIR = join(import.meta.dirname, 'migrations');

export function readPostgresMigrations(): Migration[] {
  return readMigrations(POSTGRES_MIGRATIONS_DIR);
}

/** Applies pending migrations to `schema` and returns the versions it applied (empty when up to date). */
export async function runPostgresMigrations(
  client: pg.ClientBase,
  schema: string,
  migrations: Migration[] = readPostgresMigrations(),
): Promise<number[]> {
  const applied: number[] = [];
  await client.query('BEGIN');
  try {
    // Pool connections cancel statements after 10 s; a migration on a large table, or a node
    // waiting for another's, may take longer.
    await client.query('SET LOCAL statement_timeout = 0');
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`punctual:migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`);
    await client.query(`SET LOCAL search_path = ${quoteIdentifier(schema)}`);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )`);
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((row) => row.version));
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      applied.push(migration.version);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
  return applied;
}
