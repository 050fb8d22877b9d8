/**
 * A throwaway single-node Kafka broker (KRaft) for tests, run by `scripts/kafka.sh` on free
 * loopback ports with a fresh temporary data directory. Needs Java 17+ and Maven (the jars come
 * from Maven Central, cached between runs in ~/.cache/punctual).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from './free-port.ts';

const SCRIPT = resolve(import.meta.dirname, '../../scripts/kafka.sh');

export interface KafkaBroker {
  /** `127.0.0.1:<port>`, for a client's bootstrap brokers. */
  brokers: string;
  port: number;
  /** Stops the broker and keeps its data: clients see it go away. */
  down(): Promise<void>;
  /** Starts it again, on the same ports and data, after `down()`. */
  up(): Promise<void>;
  /** Stops the broker and removes its directory. */
  stop(): Promise<void>;
}

export interface KafkaBrokerOptions {
  /** Kafka release (default: the script's). */
  version?: string;
  /** Seconds `up` waits for the broker to serve clients (default: the script's, 60). */
  startTimeoutSeconds?: number;
}

/** Data dirs of brokers still running: killed when the test process exits, so none outlives it. */
const live = new Set<string>();
process.once('exit', () => {
  for (const dir of live) {
    try {
      process.kill(Number(readFileSync(join(dir, 'kafka.pid'), 'utf8')), 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

function run(command: 'up' | 'down', env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('bash', [SCRIPT, command], { env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      if (error) reject(new Error(`scripts/kafka.sh ${command} failed: ${error.message}\n${stdout}${stderr}`));
      else resolve();
    });
  });
}

export async function startKafkaBroker(options: KafkaBrokerOptions = {}): Promise<KafkaBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'punctual-kafka-'));
  const port = await freePort();
  let controllerPort = await freePort();
  while (controllerPort === port) controllerPort = await freePort();
  const env: Record<string, string> = {
    KAFKA_PORT: String(port),
    KAFKA_CONTROLLER_PORT: String(controllerPort),
    KAFKA_DATA_DIR: dir,
  };
  if (options.version !== undefined) env.KAFKA_VERSION = options.version;
  if (options.startTimeoutSeconds !== undefined) env.KAFKA_START_TIMEOUT = String(options.startTimeoutSeconds);

  const up = async () => {
    live.add(dir);
    await run('up', env);
  };
  const down = async () => {
    await run('down', env);
    live.delete(dir);
  };
  try {
    await up();
  } catch (error) {
    await down().catch(() => {}); // a broker that started but never became ready
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    brokers: `127.0.0.1:${port}`,
    port,
    up,
    down,
    stop: async () => {
      await down();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
