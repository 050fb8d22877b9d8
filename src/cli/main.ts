/**
 * The `punctual` command line: `punctual serve`, `punctual migrate`.
 * Flags win over environment variables, which win over defaults.
 */
import { parseArgs } from 'node:util';
import { ApiKeys, newApiKey } from '../api/api-keys.ts';
import { type KafkaSettings, kafkaSettingsFromEnv } from '../kafka/settings.ts';
import { type AllowList, allowListFromEnv } from '../targets/address-guard.ts';
import { parseWebhookSecrets, type WebhookSecrets } from '../targets/webhook-signature.ts';
import { migrate } from './commands/migrate.ts';
import { serve } from './commands/serve.ts';

const USAGE = `Usage: punctual <command> [options]

Commands:
  serve     run the scheduler and its HTTP API
  migrate   apply the store's schema migrations and exit
  api-key NAME   make a new API key; prints it and the line for PUNCTUAL_API_KEYS_FILE

Options (serve):
  --port N          HTTP port                     (PUNCTUAL_PORT, default 8080)
  --host H          address to listen on          (PUNCTUAL_HOST, default 127.0.0.1)
  --store URL       task store                    (PUNCTUAL_STORE, default sqlite:./punctual.db)
  --handlers FILE   ES module exporting handlers  (PUNCTUAL_HANDLERS)
  --concurrency N   tasks run at once             (PUNCTUAL_CONCURRENCY, default 100)
  --kafka-brokers L host:port,... for Kafka targets, lifecycle events and worker
                    results (PUNCTUAL_KAFKA_BROKERS; topics: PUNCTUAL_KAFKA_TOPIC_*,
                    see docs/kafka.md)
Options (migrate):
  --store URL
`;

export interface CliOptions {
  port: number;
  host: string;
  store: string;
  handlers: string | undefined;
  concurrency: number;
  /** Null without brokers. */
  kafka: KafkaSettings | null;
  webhookSecrets: WebhookSecrets;
  allowPrivateTargets: AllowList;
  /** Null: no keys configured (then the service only listens on loopback). */
  apiKeys: ApiKeys | null;
  /** Positional arguments after the command. */
  args: string[];
}

function readOptions(argv: string[], env: NodeJS.ProcessEnv): { command: string | undefined; options: CliOptions } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      store: { type: 'string' },
      handlers: { type: 'string' },
      concurrency: { type: 'string' },
      'kafka-brokers': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return { command: 'help', options: undefined as never };
  const port = positiveInt('--port', values.port ?? env.PUNCTUAL_PORT ?? '8080', true);
  const concurrency = positiveInt('--concurrency', values.concurrency ?? env.PUNCTUAL_CONCURRENCY ?? '100');
  return {
    command: positionals[0],
    options: {
      port,
      host: values.host ?? env.PUNCTUAL_HOST ?? '127.0.0.1',
      store: values.store ?? env.PUNCTUAL_STORE ?? 'sqlite:./punctual.db',
      handlers: values.handlers ?? env.PUNCTUAL_HANDLERS,
      concurrency,
      webhookSecrets: parseWebhookSecrets(env.PUNCTUAL_WEBHOOK_SECRETS),
      apiKeys: ApiKeys.fromEnv(env),
      allowPrivateTargets: allowListFromEnv(env),
      args: positionals.slice(1),
      kafka: kafkaSettings(brokerList(values['kafka-brokers'] ?? env.PUNCTUAL_KAFKA_BROKERS ?? ''), env),
    },
  };
}

function kafkaSettings(brokers: string[], env: NodeJS.ProcessEnv): KafkaSettings | null {
  return brokers.length > 0 ? kafkaSettingsFromEnv(brokers, env) : null;
}

/** `host:port,host:port` → the list; each must name a port. */
function brokerList(text: string): string[] {
  const brokers = text
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
  for (const broker of brokers) {
    if (!/^[^\s:/]+:\d{1,5}$/.test(broker)) {
      throw new Error(`--kafka-brokers must list host:port entries separated by commas, got "${broker}"`);
    }
  }
  return brokers;
}

function positiveInt(flag: string, text: string, allowZero = false): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1))
    throw new Error(`${flag} must be a whole number, got "${text}"`);
  return value;
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof readOptions>;
  try {
    parsed = readOptions(process.argv.slice(2), process.env);
  } catch (error) {
    process.stderr.write(`punctual: ${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  switch (parsed.command) {
    case 'serve':
      return serve(parsed.options);
    case 'migrate':
      return migrate(parsed.options);
    case 'api-key': {
      const { key, line } = newApiKey(parsed.options.args[0] ?? '');
      process.stdout.write(
        `key (give it to the client; it is not stored):\n  ${key}\nline for PUNCTUAL_API_KEYS_FILE:\n  ${line}\n`,
      );
      return;
    }
    case 'help':
    case undefined:
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`punctual: unknown command "${parsed.command}"\n\n${USAGE}`);
      process.exit(2);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`punctual: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
