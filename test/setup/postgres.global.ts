/**
 * Starts one PostgreSQL server for the whole test run and hands its URL to the test files
 * (`inject('postgresUrl')`); each test then works in a schema of its own. With
 * PUNCTUAL_TEST_POSTGRES_URL set, that server is used instead and nothing is started.
 */
import type { TestProject } from 'vitest/node';
import { startPostgresServer } from '../helpers/postgres-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const existing = process.env.PUNCTUAL_TEST_POSTGRES_URL;
  if (existing) {
    project.provide('postgresUrl', existing);
    return undefined;
  }
  const server = await startPostgresServer();
  project.provide('postgresUrl', server.url);
  return () => server.stop();
}
