/** Command-line flags of `npm run bench`. */
import { parseArgs } from 'node:util';
import type { DispatchSettings } from '../../src/punctual.ts';

export const SCENARIOS = [
  'lateness',
  'ingest-batch',
  'ingest-single',
  'throughput',
  'nodes',
  'backlog',
  'relay',
  'workers',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];
/** What `all` runs: the longer scenarios (several service processes, a million-task backlog) are asked for by name. */
const ALL: readonly ScenarioName[] = ['lateness', 'ingest-batch', 'ingest-single', 'throughput'];

export interface BenchOptions {
  /** `sqlite` (a fresh temp file per scenario), `postgres` (a throwaway server) or a store URL. */
  store: string;
  scenarios: ScenarioName[];
  quick: boolean;
  /** Where the raw JSON goes (default bench/results). */
  outDir: string | undefined;
  /** Dispatcher settings to try besides the defaults (--dispatch key=value). */
  dispatch: DispatchSettings | undefined;
  /** Lateness: tasks due per second (20 s of them), instead of 1,000/s. */
  rate: number | undefined;
  /** Throughput: backlog size, instead of 100,000. */
  count: number | undefined;
}

const DISPATCH_KEYS = [
  'concurrency',
  'lookaheadMs',
  'pollIntervalMs',
  'maxHeld',
  'claimBatchSize',
  'leaseGraceMs',
  'completionDelayMs',
] as const satisfies readonly (keyof DispatchSettings)[];

export const USAGE = `Usage: npm run bench -- [options]

  --store S        sqlite (default: a fresh temp SQLite file per scenario), postgres (a throwaway
                   PostgreSQL server started for the run) or a store URL (postgres://…: a fresh
                   schema per scenario, dropped afterwards)
  --scenario X     all (default) | lateness | ingest | ingest-batch | ingest-single | throughput
                   | nodes (1, 2, 3 service processes on one store) | backlog (lateness with and
                   without 1,000,000 future tasks) | relay (Kafka event relay: lateness with
                   it off and on, event delay, events/s; starts a throwaway Kafka broker)
                   | workers (4 remote worker processes: added latency through a long-poll,
                   tasks/s); nodes, backlog, relay and workers are not part of all.
                   (may be given more than once)
  --quick          small counts: a smoke run of a minute or so, figures not meaningful
  --out DIR        directory for the raw JSON (default bench/results)
  --rate N         lateness: N tasks due per second for 20 s (default 1,000/s); for slow stores
  --count N        throughput: a backlog of N tasks (default 100,000)
  --dispatch K=V   a dispatcher setting to try (repeatable): lateness then runs with it, and
                   throughput runs the defaults then it (instead of its built-in variants).
                   Keys: ${DISPATCH_KEYS.join(', ')}
  -h, --help
`;

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      store: { type: 'string', default: 'sqlite' },
      scenario: { type: 'string', multiple: true },
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      dispatch: { type: 'string', multiple: true },
      rate: { type: 'string' },
      count: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const wanted = new Set<ScenarioName>();
  for (const name of values.scenario ?? ['all']) {
    if (name === 'all') for (const s of ALL) wanted.add(s);
    else if (name === 'ingest') for (const s of ['ingest-batch', 'ingest-single'] as const) wanted.add(s);
    else if ((SCENARIOS as readonly string[]).includes(name)) wanted.add(name as ScenarioName);
    else throw new Error(`unknown scenario "${name}"; expected all, ${SCENARIOS.join(', ')} or ingest`);
  }
  return {
    store: values.store as string,
    scenarios: SCENARIOS.filter((s) => wanted.has(s)),
    quick: values.quick as boolean,
    outDir: values.out,
    dispatch: values.dispatch ? parseDispatch(values.dispatch) : undefined,
    rate: values.rate === undefined ? undefined : wholeNumber('--rate', values.rate),
    count: values.count === undefined ? undefined : wholeNumber('--count', values.count),
  };
}

function wholeNumber(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${flag}: expected a whole number above 0, got "${text}"`);
  return value;
}

function parseDispatch(pairs: string[]): DispatchSettings {
  const settings: DispatchSettings = {};
  for (const pair of pairs) {
    const [key, text] = pair.split('=');
    if (!(DISPATCH_KEYS as readonly string[]).includes(key ?? '')) {
      throw new Error(`--dispatch: unknown setting "${key}"; expected one of ${DISPATCH_KEYS.join(', ')}`);
    }
    const value = Number(text);
    if (!Number.isInteger(value) || value < 0)
      throw new Error(`--dispatch ${key}: expected a whole number, got "${text}"`);
    settings[key as (typeof DISPATCH_KEYS)[number]] = value;
  }
  return settings;
}
