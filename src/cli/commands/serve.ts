/**
 * `punctual serve`: open the store (migrations run at open), start the dispatcher, listen.
 * SIGTERM/SIGINT stop it gracefully: stop accepting requests, finish or release held tasks,
 * close the store. A second signal exits at once (leases then expire and are recovered).
 */
import { pino } from 'pino';
import { buildApp } from '../../api/app.ts';
import { createPunctual } from '../../punctual.ts';
import { openStore } from '../../store/open-store.ts';
import { loadHandlers } from '../../targets/load-handlers.ts';
import type { CliOptions } from '../main.ts';

const SHUTDOWN_GRACE_MS = 10_000;

export async function serve(options: CliOptions): Promise<void> {
  const logger = pino({ level: process.env.PUNCTUAL_LOG_LEVEL ?? 'info' });
  if (!options.apiKeys && !isLoopback(options.host)) {
    throw new Error(
      `no API keys are configured (PUNCTUAL_API_KEYS or PUNCTUAL_API_KEYS_FILE): refusing to listen on ${options.host}; configure keys or listen on 127.0.0.1`,
    );
  }
  const store = await openStore(options.store);
  const punctual = createPunctual({
    store,
    logger,
    concurrency: options.concurrency,
    leaseGraceMs: optionalMs(process.env.PUNCTUAL_LEASE_GRACE_MS),
    lookaheadMs: optionalMs(process.env.PUNCTUAL_LOOKAHEAD_MS),
    pollIntervalMs: optionalMs(process.env.PUNCTUAL_POLL_INTERVAL_MS),
    kafka: options.kafka ?? undefined,
    storeUrl: options.store,
    webhookSecrets: options.webhookSecrets,
    allowPrivateTargets: options.allowPrivateTargets,
  });
  if (options.handlers) await loadHandlers(options.handlers, punctual.handlerRegistry);
  const app = buildApp({ service: punctual, logger, apiKeys: options.apiKeys });
  // Finish building the app (plugins, schemas) before claiming: that work blocks the event loop,
  // and claimed tasks would wait behind it.
  await app.ready();
  await punctual.start();
  await app.listen({ port: options.port, host: options.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  logger.info(
    { port, host: options.host, store: redact(options.store) },
    `punctual listening on http://${options.host}:${port}`,
  );
  if (!options.apiKeys) {
    logger.warn(
      { host: options.host },
      'no API keys configured: the API is open to anyone who can reach this address (loopback only)',
    );
  }

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // Answer workers' long-polls first: closing the server waits for requests in flight.
    punctual.beginShutdown();
    await app.close();
    await punctual.stop({ graceMs: SHUTDOWN_GRACE_MS });
    await store.close();
    process.exit(0);
  };
  process.on('SIGTERM', (s) => void shutdown(s));
  process.on('SIGINT', (s) => void shutdown(s));
}

/** Tuning knobs read from the environment; unset means the dispatcher's default. */
function optionalMs(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new Error(`expected a whole number of milliseconds, got "${text}"`);
  return value;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Keep passwords out of logs. */
function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}
