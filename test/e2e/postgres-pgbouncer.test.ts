/**
 * `punctual serve` behind a real PgBouncer. Session mode works (notifications, and the schema of
 * the URL even though PgBouncer drops startup options); transaction mode is refused at start with
 * a message that says why and what to do, before anything is written to the database.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { findPgBouncer, type PgBouncer, startPgBouncer } from '../helpers/pgbouncer.ts';
import { adminQuery, storeUrl } from '../helpers/postgres-server.ts';
import { api, launchService, type ServiceProcess, startService } from '../helpers/service-process.ts';
import { waitUntil } from '../helpers/wait.ts';

// A machine without pgbouncer skips these, except in CI, where scripts/setup.sh installs it.
const available = findPgBouncer() !== null || process.env.CI === 'true';

let bouncer: PgBouncer | undefined;
let service: ServiceProcess | undefined;

afterEach(async () => {
  await service?.kill('SIGKILL');
  await bouncer?.stop();
  service = undefined;
  bouncer = undefined;
});

const schemaName = () => `bouncer_${randomBytes(4).toString('hex')}`;

async function tablesIn(schema: string): Promise<string[]> {
  const rows = await adminQuery<{ table_name: string }>(
    inject('postgresUrl'),
    'SELECT table_name FROM information_schema.tables WHERE table_schema = $1',
    [schema],
  );
  return rows.map((r) => r.table_name);
}

describe.skipIf(!available)('behind PgBouncer', () => {
  const upstreamPort = () => Number(new URL(inject('postgresUrl')).port);

  it('in session mode: runs, in the schema the URL names, and fires a task created through the API', async () => {
    bouncer = await startPgBouncer(upstreamPort(), 'session');
    const schema = schemaName();
    service = await startService({ store: storeUrl(bouncer.url, { schema }) });
    expect(await tablesIn(schema)).toContain('tasks');

    const created = await api(service.url, '/v1/tasks', {
      body: { name: 'via-bouncer', description: 'd', scheduled_date: new Date(Date.now() + 200).toISOString() },
    });
    expect(created.status).toBe(201);
    // No handler for the name: a remote worker claims it from the queue named after it.
    const claim = await api(service.url, '/v1/queues/via-bouncer/claim', { body: { wait_ms: 10_000 } });
    expect(claim.body.tasks.map((t: { id: string }) => t.id)).toEqual([created.body.id]);
    const [claimed] = claim.body.tasks;
    const done = await api(service.url, `/v1/tasks/${created.body.id}/complete`, {
      body: { lease_token: claimed.lease_token },
    });
    expect(done.status).toBe(204);
    const task = await waitUntil(
      async () => {
        const { body } = await api(service!.url, `/v1/tasks/${created.body.id}`);
        return body.state === 'succeeded' ? body : undefined;
      },
      { timeoutMs: 10_000, what: 'the task to succeed' },
    );
    expect(task.attempts).toBe(1);
  });

  it('in transaction mode: refuses to start, says why, and writes nothing', async () => {
    bouncer = await startPgBouncer(upstreamPort(), 'transaction');
    const schema = schemaName();
    const launched = launchService({ store: storeUrl(bouncer.url, { schema }) });
    const code = await launched.exited;
    expect(code).not.toBe(0);
    const output = launched.logs.join('\n');
    expect(output).toContain('LISTEN/NOTIFY is unavailable');
    expect(output).toContain('transaction mode');
    expect(output).toContain('session mode');
    expect(output).not.toMatch(/\n\s+at /); // a message, not a stack trace
    expect(await tablesIn(schema)).toEqual([]);
  });
});
