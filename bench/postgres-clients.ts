/**
 * Which PostgreSQL client should the store use? Times the store's own statements (the files in
 * src/store/postgres/queries) through node-postgres (`pg`) and porsager's `postgres`, on the same
 * server, each client in a fresh schema:
 *
 * - create: 1,000-task batches (one statement each), then claim and complete them in 1,000-row
 *   batches — the dispatcher's hot path;
 * - single creates: one task per statement, one at a time (latency) and 50 in flight (throughput),
 *   the API's path for single requests.
 *
 *   node bench/postgres-clients.ts [--rounds 3] [--batches 20] [--singles 2000] [--url postgres://…]
 *
 * Without --url it starts a throwaway server (test/helpers/postgres-server.ts: fsync and
 * synchronous_commit on). Both clients use a pool of 10, the store's connection settings and its
 * rule for prepared statements (CACHED_PLAN_MAX_ROWS), and the same parameters; rounds alternate
 * which client goes first. Prints a table (median and p95 per
 * statement, in ms) to stdout; progress to stderr.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import postgres from 'postgres';
import { uuidv7 } from '../src/core/ids.ts';
import { STATEMENT_TIMEOUT_MS } from '../src/store/postgres/connection-config.ts';
import { CACHED_PLAN_MAX_ROWS } from '../src/store/postgres/postgres-store.ts';
import { startPostgresServer } from '../test/helpers/postgres-server.ts';

const QUERIES = join(import.meta.dirname, '..', 'src', 'store', 'postgres', 'queries');
const MIGRATION = join(import.meta.dirname, '..', 'src', 'store', 'postgres', 'migrations', '001_init.sql');
const sql = (name: string) => readFileSync(join(QUERIES, `${name}.sql`), 'utf8');
const CREATE = sql('create');
const CLAIM = sql('claim-due');
const COMPLETE = sql('complete');
const BACKOFF = JSON.stringify({ type: 'exponential', base_ms: 1000, factor: 2, max_ms: 3600000, jitter: true });
const CHANNEL = 'punctual_bench';

/** Both clients get the session settings as the startup `options` parameter (a direct connection). */
const connectionOptions = (schema: string) => `-c search_path=${schema} -c statement_timeout=${STATEMENT_TIMEOUT_MS}`;

/**
 * The one call both clients implement: a statement with positional parameters, prepared under
 * `name` when it works on few rows and planned afresh otherwise, as the store does.
 */
interface Runner {
  name: string;
  query(name: string, text: string, values: unknown[], rows: number): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

function pgRunner(url: string, schema: string): Runner {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    options: connectionOptions(schema),
  });
  return {
    name: 'pg',
    async query(name, text, values, rows) {
      return (await pool.query({ name: rows <= CACHED_PLAN_MAX_ROWS ? name : undefined, text, values })).rows;
    },
    close: () => pool.end(),
  };
}

function porsagerRunner(url: string, schema: string): Runner {
  const client = postgres(url, {
    max: 10,
    prepare: true,
    onnotice: () => {},
    connection: { options: connectionOptions(schema) },
  });
  return {
    name: 'postgres',
    async query(_name, text, values, rows) {
      const prepare = rows <= CACHED_PLAN_MAX_ROWS;
      return [...(await client.unsafe(text, values as never[], { prepare }))];
    },
    close: () => client.end({ timeout: 5 }),
  };
}

function createParams(count: number, now: number): unknown[] {
  const ids = Array.from({ length: count }, () => uuidv7());
  const column = <T>(value: T) => Array.from({ length: count }, () => value);
  return [
    now,
    ids,
    column('bench'),
    column('send-email'),
    column(null),
    column(JSON.stringify({ to: 'ada@example.com', n: 42 })),
    column(null),
    ids.map((_, i) => now - 1_000 + i),
    column(null),
    column(3),
    column(30_000),
    column(BACKOFF),
    column(null),
    column(null),
    null,
    0,
    0,
    0,
    CHANNEL,
  ];
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

interface Sample {
  client: string;
  op: string;
  ms: number[];
  rows: number;
  wallMs: number;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

async function runClient(runner: Runner, options: { batches: number; singles: number }): Promise<Sample[]> {
  const now = Date.now();
  const samples: Sample[] = [];
  const record = (op: string, ms: number[], rows: number, wallMs: number) =>
    samples.push({ client: runner.name, op, ms, rows, wallMs });

  // Warm up: connections, prepared statements, caches.
  for (let i = 0; i < 3; i++) await runner.query('create', CREATE, createParams(100, now), 100);
  await runner.query('claim', CLAIM, [now, 0, 1000, 'warm', 5000], 1000);

  const createMs: number[] = [];
  let start = performance.now();
  for (let b = 0; b < options.batches; b++) {
    createMs.push(await timed(() => runner.query('create', CREATE, createParams(1000, now + b), 1000)));
  }
  record('create 1,000 (batch)', createMs, options.batches * 1000, performance.now() - start);

  const claimMs: number[] = [];
  const claimed: { id: string; token: string }[][] = [];
  start = performance.now();
  for (let b = 0; b < options.batches; b++) {
    let rows: Record<string, unknown>[] = [];
    claimMs.push(
      await timed(async () => {
        rows = await runner.query('claim', CLAIM, [now + 10_000, 0, 1000, 'bench-node', 5000], 1000);
      }),
    );
    claimed.push(rows.filter((r) => r.id !== null).map((r) => ({ id: String(r.id), token: String(r.lease_token) })));
  }
  record('claim 1,000', claimMs, claimed.flat().length, performance.now() - start);

  const completeMs: number[] = [];
  start = performance.now();
  for (const batch of claimed) {
    const n = batch.length;
    const params = [
      now + 11_000,
      batch.map((t) => t.id),
      batch.map((t) => t.token),
      Array.from({ length: n }, () => 'succeeded'),
      Array.from({ length: n }, () => now + 10_500),
      Array.from({ length: n }, () => now + 10_900),
      Array.from({ length: n }, () => null),
      Array.from({ length: n }, () => null),
      CHANNEL,
    ];
    completeMs.push(await timed(() => runner.query('complete', COMPLETE, params, n)));
  }
  record('complete 1,000', completeMs, claimed.flat().length, performance.now() - start);

  const singleMs: number[] = [];
  start = performance.now();
  for (let i = 0; i < options.singles; i++) {
    singleMs.push(await timed(() => runner.query('create', CREATE, createParams(1, now + 3_600_000), 1)));
  }
  record('create 1 (one at a time)', singleMs, options.singles, performance.now() - start);

  const parallelMs: number[] = [];
  let next = 0;
  start = performance.now();
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next++ < options.singles) {
        parallelMs.push(await timed(() => runner.query('create', CREATE, createParams(1, now + 3_600_000), 1)));
      }
    }),
  );
  record('create 1 (50 in flight)', parallelMs, options.singles, performance.now() - start);
  return samples;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      batches: { type: 'string', default: '20' },
      singles: { type: 'string', default: '2000' },
      url: { type: 'string' },
    },
  });
  const rounds = Number(values.rounds);
  const sizes = { batches: Number(values.batches), singles: Number(values.singles) };
  const server = values.url ? undefined : await startPostgresServer();
  const url = values.url ?? server?.url ?? '';
  const admin = new pg.Client(url);
  await admin.connect();
  const all: Sample[] = [];
  try {
    const { rows } = await admin.query('SHOW server_version');
    console.error(`PostgreSQL ${rows[0]?.server_version}, ${cpus().length} cores (${cpus()[0]?.model})`);
    const makers = [pgRunner, porsagerRunner];
    for (let round = 0; round < rounds; round++) {
      for (const make of round % 2 === 0 ? makers : [...makers].reverse()) {
        const schema = `bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
        await admin.query(`CREATE SCHEMA ${schema}; SET search_path = ${schema}`);
        await admin.query(readFileSync(MIGRATION, 'utf8'));
        const runner = make(url, schema);
        try {
          console.error(`round ${round + 1}/${rounds}: ${runner.name}`);
          all.push(...(await runClient(runner, sizes)));
        } finally {
          await runner.close();
          await admin.query(`DROP SCHEMA ${schema} CASCADE`);
        }
      }
    }
  } finally {
    await admin.end();
    await server?.stop();
  }

  const ops = [...new Set(all.map((s) => s.op))];
  console.log(`rounds: ${rounds}, 1,000-row batches per round: ${sizes.batches}, single creates: ${sizes.singles}`);
  console.log('| statement | client | median ms | p95 ms | rows/s |');
  console.log('| --- | --- | ---: | ---: | ---: |');
  for (const op of ops) {
    for (const client of ['pg', 'postgres']) {
      const mine = all.filter((s) => s.op === op && s.client === client);
      const ms = mine.flatMap((s) => s.ms).sort((a, b) => a - b);
      const rows = mine.reduce((sum, s) => sum + s.rows, 0);
      const wall = mine.reduce((sum, s) => sum + s.wallMs, 0);
      const rate = Math.round((rows / wall) * 1000).toLocaleString('en-US');
      console.log(
        `| ${op} | ${client} | ${percentile(ms, 50).toFixed(2)} | ${percentile(ms, 95).toFixed(2)} | ${rate} |`,
      );
    }
  }
}

await main();
