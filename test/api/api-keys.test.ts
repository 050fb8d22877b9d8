/** API keys: Bearer keys from the environment or a file of hashes, revocable without a restart. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiKeys, newApiKey } from '../../src/api/api-keys.ts';
import { FUTURE, type Harness, startHarness } from './harness.ts';

const ENV_KEY = 'env-key-0123456789abcdefghij';
let harness: Harness | undefined;

afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

function keysFile(lines: string[]): string {
  const path = join(mkdtempSync(join(tmpdir(), 'punctual-keys-')), 'keys');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

async function get(path: string, key?: string) {
  return (harness as Harness).app.inject({
    method: 'GET',
    url: path,
    headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
  });
}

describe('API keys', () => {
  it('admit a request with a configured key and refuse a missing or unknown one with a 401 problem', async () => {
    harness = await startHarness({ apiKeys: ApiKeys.fromEnv({ PUNCTUAL_API_KEYS: ENV_KEY }) });
    expect((await get('/v1/tasks', ENV_KEY)).statusCode).toBe(200);
    const created = await harness.app.inject({
      method: 'POST',
      url: '/v1/tasks',
      headers: { authorization: `Bearer ${ENV_KEY}` },
      payload: { name: 'n', scheduled_date: FUTURE },
    });
    expect(created.statusCode).toBe(201);

    for (const [key, detail] of [
      [undefined, 'Authorization: Bearer'],
      [`${ENV_KEY}x`, 'not recognised'],
      ['', 'Authorization: Bearer'],
    ] as const) {
      const response = await get('/v1/tasks', key);
      expect(response.statusCode).toBe(401);
      expect(response.headers['content-type']).toContain('application/problem+json');
      expect(response.headers['www-authenticate']).toBe('Bearer realm="punctual"');
      expect(response.json()).toMatchObject({ code: 'PUNCTUAL_UNAUTHORIZED', status: 401 });
      expect(response.json().detail).toContain(detail);
    }
    const basic = await harness.app.inject({
      method: 'GET',
      url: '/v1/tasks',
      headers: { authorization: `Basic ${ENV_KEY}` },
    });
    expect(basic.statusCode).toBe(401);
  });

  it('leave health checks and the API description open', async () => {
    harness = await startHarness({ apiKeys: ApiKeys.fromEnv({ PUNCTUAL_API_KEYS: ENV_KEY }) });
    expect((await get('/healthz')).statusCode).toBe(200);
    expect((await get('/readyz')).statusCode).toBe(200);
    expect((await get('/openapi.json')).statusCode).toBe(200);
    expect((await get('/v1/tasks/x')).statusCode).toBe(401); // not found is not told to strangers
  });

  it('read hashed keys from a file, refuse revoked ones, and see edits without a restart', async () => {
    const alice = newApiKey('alice');
    const bob = newApiKey('bob');
    const file = keysFile(['# keys', alice.line, `${bob.line} revoked`]);
    expect(alice.line).not.toContain(alice.key); // only the hash is stored
    harness = await startHarness({ apiKeys: ApiKeys.fromEnv({ PUNCTUAL_API_KEYS_FILE: file }) });
    expect((await get('/v1/tasks', alice.key)).statusCode).toBe(200);
    const revoked = await get('/v1/tasks', bob.key);
    expect(revoked.statusCode).toBe(401);
    expect(revoked.json().detail).toContain('revoked');

    writeFileSync(file, `${alice.line} revoked\n${bob.line}\n`);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // the file is checked at most once a second
    expect((await get('/v1/tasks', alice.key)).statusCode).toBe(401);
    expect((await get('/v1/tasks', bob.key)).statusCode).toBe(200);

    writeFileSync(file, 'this is not a key line\n'); // a bad edit keeps the keys already loaded
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await get('/v1/tasks', bob.key)).statusCode).toBe(200);
  });

  it('are not configured by default, and bad settings are refused naming the variable', () => {
    expect(ApiKeys.fromEnv({})).toBeNull();
    expect(() => ApiKeys.fromEnv({ PUNCTUAL_API_KEYS: 'short' })).toThrow(/PUNCTUAL_API_KEYS/);
    expect(() => ApiKeys.fromEnv({ PUNCTUAL_API_KEYS_FILE: '/nonexistent/keys' })).toThrow(/PUNCTUAL_API_KEYS_FILE/);
    expect(() => ApiKeys.fromEnv({ PUNCTUAL_API_KEYS_FILE: keysFile(['alice sha256:abc']) })).toThrow(/line 1/);
    expect(() => newApiKey('has space')).toThrow(/name/);
  });
});
