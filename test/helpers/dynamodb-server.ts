/**
 * A throwaway DynamoDB-compatible server for tests, listening on a free loopback port only:
 * - `dynalite`: the npm package, in memory, run by its CLI in a child `node` process;
 * - `moto`: `moto_server` from the private venv that `scripts/moto.sh install` builds (once).
 * Clients need some credentials and a region (any values) but no real AWS account.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from './free-port.ts';

export type DynamoServerKind = 'dynalite' | 'moto';

export interface DynamoServer {
  kind: DynamoServerKind;
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  /** Kills the server (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 30_000;
const OUTPUT_KEPT = 8_000;
const MOTO_SCRIPT = fileURLToPath(new URL('../../scripts/moto.sh', import.meta.url));

async function command(kind: DynamoServerKind, port: number): Promise<[string, string[]]> {
  if (kind === 'dynalite') {
    // Resolved from the project's node_modules (a devDependency); tables turn ACTIVE at once.
    const cli = createRequire(import.meta.url).resolve('dynalite/cli.js');
    const host = ['--host', '127.0.0.1', '--port', String(port)];
    return [process.execPath, [cli, ...host, ...'--createTableMs 0 --deleteTableMs 0 --updateTableMs 0'.split(' ')]];
  }
  // The first call builds the venv (a minute or two); later ones return at once.
  const { stdout } = await promisify(execFile)('bash', [MOTO_SCRIPT, 'install'], { maxBuffer: 1 << 24 });
  return [stdout.trim().split('\n').at(-1) ?? '', ['-H', '127.0.0.1', '-p', String(port)]];
}

export async function startDynamoServer(kind: DynamoServerKind): Promise<DynamoServer> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const [file, args] = await command(kind, port);
  const child: ChildProcess = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const remember = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-OUTPUT_KEPT);
  };
  child.stdout?.on('data', remember);
  child.stderr?.on('data', remember);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
  };

  // Ready once it answers HTTP at all: both servers reply to a bare GET without credentials.
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (spawnError !== undefined || child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(
        `${kind} exited before it answered on ${endpoint}: ${spawnError?.message ?? `code ${child.exitCode}, signal ${child.signalCode}`}\n${output}`,
      );
    }
    try {
      await fetch(endpoint, { signal: AbortSignal.timeout(1_000) });
      return { kind, endpoint, stop };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${kind} did not answer on ${endpoint} within ${START_TIMEOUT_MS / 1000} s\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A store URL for a fresh table (`create` it on open) on a test server, with extra URL options. */
export function tableUrl(endpoint: string, options: Record<string, string> = {}): string {
  const query = new URLSearchParams({ endpoint, region: 'us-east-1', ...options });
  return `dynamodb://t_${randomBytes(6).toString('hex')}?${query}`;
}
