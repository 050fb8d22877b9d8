/**
 * A PgBouncer in front of a test PostgreSQL server (Debian's `pgbouncer` package, which
 * scripts/setup.sh installs), on a free loopback port, in the pool mode asked for. PgBouncer will
 * not run as root: as root it runs as the `postgres` user the PostgreSQL helper runs the server as.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.ts';

export interface PgBouncer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` through the pooler. */
  url: string;
  stop(): Promise<void>;
}

export type PoolMode = 'session' | 'transaction';

/** The pgbouncer executable, or null when the machine has none. */
export function findPgBouncer(): string | null {
  for (const candidate of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer']) {
    try {
      execFileSync(candidate, ['--version'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // not there
    }
  }
  return null;
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startPgBouncer(upstreamPort: number, mode: PoolMode): Promise<PgBouncer> {
  const binary = findPgBouncer();
  if (binary === null) throw new Error('pgbouncer is not installed (apt-get install -y pgbouncer)');
  const dir = await mkdtemp(join(tmpdir(), 'punctual-pgbouncer-'));
  await chmod(dir, 0o777);
  const port = await freePort();
  const config = join(dir, 'pgbouncer.ini');
  await writeFile(join(dir, 'users.txt'), '"postgres" ""\n');
  await writeFile(
    config,
    [
      '[databases]',
      `* = host=127.0.0.1 port=${upstreamPort}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      "unix_socket_dir = ''",
      'auth_type = trust',
      `auth_file = ${join(dir, 'users.txt')}`,
      `pool_mode = ${mode}`,
      'max_client_conn = 200',
      'default_pool_size = 20',
      // What most deployments set so that clients sending these parameters can connect at all.
      'ignore_startup_parameters = extra_float_digits,options',
      '',
    ].join('\n'),
  );
  await chmod(config, 0o644);
  const asRoot = process.getuid?.() === 0;
  const command = asRoot ? 'runuser' : binary;
  const args = asRoot ? ['-u', 'postgres', '--', binary, config] : [config];
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  child.stdout?.on('data', (chunk) => output.push(String(chunk)));
  child.stderr?.on('data', (chunk) => output.push(String(chunk)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
      throw new Error(`pgbouncer did not start on port ${port}:\n${output.join('')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
