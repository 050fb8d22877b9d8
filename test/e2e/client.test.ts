/**
 * The client package against a real `punctual serve` with API keys: every method, and the typed
 * errors the problem+json bodies turn into.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConflictError,
  IdempotencyConflictError,
  NetworkError,
  PunctualClient,
  TaskNotFoundError,
  UnauthorizedError,
  ValidationError,
} from '../../packages/client/src/index.ts';
import { type ServiceProcess, startService } from '../helpers/service-process.ts';

const KEY = 'client-test-key-0123456789abcdef';
let service: ServiceProcess;
let client: PunctualClient;

beforeAll(async () => {
  service = await startService({ env: { PUNCTUAL_API_KEYS: KEY } });
  client = new PunctualClient({ url: `${service.url}/`, apiKey: KEY });
});

afterAll(async () => {
  await service?.kill('SIGTERM');
});

const later = (ms: number) => new Date(Date.now() + ms);

describe('the client package', () => {
  it('builds to ESM JavaScript with type declarations, and loads without the server', () => {
    const outDir = mkdtempSync(join(tmpdir(), 'punctual-client-build-'));
    const root = resolve(import.meta.dirname, '../..');
    execFileSync(process.execPath, [
      join(root, 'node_modules/typescript/bin/tsc'),
      '-p',
      join(root, 'packages/client/tsconfig.build.json'),
      '--outDir',
      outDir,
    ]);
    expect(readdirSync(outDir)).toEqual(
      expect.arrayContaining(['index.js', 'index.d.ts', 'client.js', 'signature.js']),
    );
    const loaded = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import('${join(outDir, 'index.js')}').then((m) => console.log(typeof m.PunctualClient, typeof m.verifySignature))`,
      ],
      { encoding: 'utf8' },
    );
    expect(loaded.trim()).toBe('function function');
  });
});

describe('PunctualClient', () => {
  it('creates, reads, lists, reschedules, edits and cancels tasks', async () => {
    const task = await client.create({ name: 'client-a', scheduled_date: later(3_600_000), payload: { n: 1 } });
    expect(task).toMatchObject({ name: 'client-a', state: 'scheduled', payload: { n: 1 } });
    expect((await client.get(task.id)).attempt_log).toEqual([]);

    const batch = await client.createBatch([
      { name: 'client-b', scheduled_date: later(3_700_000) },
      { name: 'client-b', scheduled_date: later(3_800_000) },
    ]);
    expect(batch.map((r) => r.status)).toEqual(['created', 'created']);
    const page = await client.list({ name: 'client-b', limit: 1 });
    expect(page.tasks).toHaveLength(1);
    expect(page.next_cursor).not.toBeNull();
    const all = [];
    for await (const t of client.listAll({ name: 'client-b', limit: 1 })) all.push(t.id);
    expect(all).toEqual(batch.map((r) => r.task.id));

    const moved = await client.reschedule(task.id, later(7_200_000));
    expect(Date.parse(moved.scheduled_date)).toBeGreaterThan(Date.parse(task.scheduled_date));
    expect((await client.update(task.id, { description: 'edited' })).description).toBe('edited');
    expect((await client.cancel(task.id)).state).toBe('canceled');
  });

  it('runs a task now and retries a failed one', async () => {
    // Its webhook points at a private address, which is refused: the one attempt fails.
    const task = await client.create({
      name: 'refused-webhook',
      scheduled_date: later(3_600_000),
      max_attempts: 1,
      target: { type: 'http', url: 'http://10.0.0.1/hook' },
    });
    await client.runNow(task.id);
    let current = await client.get(task.id);
    for (let i = 0; i < 50 && current.state !== 'failed'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      current = await client.get(task.id);
    }
    expect(current.state).toBe('failed');
    expect((await client.retry(task.id)).state).toBe('scheduled');
  });

  it('throws typed errors carrying the problem', async () => {
    const bad = await client.create({ name: '', scheduled_date: later(1_000) }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ValidationError);
    expect((bad as ValidationError).errors[0]?.field).toBe('/name');
    expect((bad as ValidationError).code).toBe('PUNCTUAL_VALIDATION_FAILED');

    await expect(client.get('019a0000-0000-7000-8000-000000000000')).rejects.toBeInstanceOf(TaskNotFoundError);
    const done = await client.create({ name: 'client-c', scheduled_date: later(3_600_000) });
    await client.cancel(done.id);
    await expect(client.cancel(done.id)).rejects.toBeInstanceOf(ConflictError);

    await client.create({ name: 'client-d', scheduled_date: later(3_600_000), idempotency_key: 'once' });
    await expect(
      client.create({ name: 'client-d', scheduled_date: later(3_700_000), idempotency_key: 'once' }),
    ).rejects.toBeInstanceOf(IdempotencyConflictError);

    const stranger = new PunctualClient({ url: service.url, apiKey: 'wrong-key-0123456789abcdefgh' });
    await expect(stranger.list()).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(new PunctualClient({ url: 'http://127.0.0.1:9' }).list()).rejects.toBeInstanceOf(NetworkError);
  });
});
