/** The `punctual` command line as a user runs it. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ApiKeys } from '../../src/api/api-keys.ts';
import { api } from '../helpers/service-process.ts';

const BIN = resolve(import.meta.dirname, '../../bin/punctual.js');
const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });

describe('punctual CLI', () => {
  it('prints its usage', () => {
    const result = run(['--help']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('punctual <command>');
    expect(result.stdout).toContain('PUNCTUAL_STORE');
  });

  it('refuses an unknown command and a bad flag value with exit code 2', () => {
    expect(run(['launch']).status).toBe(2);
    const bad = run(['serve', '--port', 'eighty']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--port must be a whole number');
  });

  it('refuses bad Kafka and webhook settings from the environment, naming the variable', () => {
    const withEnv = (env: Record<string, string>) =>
      spawnSync(process.execPath, [BIN, 'serve', '--port', '0'], {
        encoding: 'utf8',
        timeout: 20_000,
        env: { ...process.env, ...env },
      });
    const secrets = withEnv({ PUNCTUAL_WEBHOOK_SECRETS: 'default=short' });
    expect(secrets.status).toBe(2);
    expect(secrets.stderr).toContain('PUNCTUAL_WEBHOOK_SECRETS');
    const topic = withEnv({ PUNCTUAL_KAFKA_BROKERS: '127.0.0.1:9', PUNCTUAL_KAFKA_TOPIC_EVENTS: 'bad topic' });
    expect(topic.status).toBe(2);
    expect(topic.stderr).toContain('PUNCTUAL_KAFKA_TOPIC_EVENTS');
  });

  it('refuses to listen beyond loopback without API keys', () => {
    const result = run(['serve', '--host', '0.0.0.0', '--port', '0']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('no API keys are configured');
  });

  it('makes an API key and the keys-file line that admits it', () => {
    const result = run(['api-key', 'alice']);
    expect(result.status).toBe(0);
    const key = /^\s+(pk_\S+)$/m.exec(result.stdout)?.[1] as string;
    const line = /^\s+(alice sha256:[0-9a-f]{64})$/m.exec(result.stdout)?.[1] as string;
    expect(key.length).toBeGreaterThan(24);
    const dir = mkdtempSync(join(tmpdir(), 'punctual-cli-keys-'));
    writeFileSync(join(dir, 'keys'), `${line}\n`);
    expect(ApiKeys.fromEnv({ PUNCTUAL_API_KEYS_FILE: join(dir, 'keys') })?.check(key).status).toBe('ok');
  });

  it('refuses an unknown store scheme, naming the supported ones', () => {
    const result = run(['migrate', '--store', 'mysql://localhost/x']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/sqlite/);
  });

  it('applies migrations with `punctual migrate`', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'punctual-cli-')), 'm.db');
    const result = run(['migrate', '--store', `sqlite:${path}`]);
    expect(result.status).toBe(0);
    const db = new Database(path, { readonly: true });
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
    db.close();
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['tasks', 'task_events', 'task_attempts']));
  });

  it('serves with settings from PUNCTUAL_* environment variables, and stops cleanly on SIGINT', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'punctual-cli-'));
    const child = spawn(process.execPath, [BIN, 'serve'], {
      env: { ...process.env, PUNCTUAL_PORT: '0', PUNCTUAL_HOST: '127.0.0.1', PUNCTUAL_STORE: `sqlite:${dir}/env.db` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const url = await new Promise<string>((done) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /"port":(\d+).*listening/.exec(out);
        if (match) done(`http://127.0.0.1:${match[1]}`);
      });
    });
    expect((await api(url, '/healthz')).status).toBe(200);
    expect(existsSync(join(dir, 'env.db'))).toBe(true);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });
});
