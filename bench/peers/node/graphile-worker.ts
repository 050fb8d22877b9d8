/**
 * graphile-worker 0.18 (PostgreSQL). Settings and their sources: SETTINGS.md.
 */
import { EventEmitter } from 'node:events';
import { Logger, makeWorkerUtils, run, type WorkerEvents } from 'graphile-worker';
import { log, type Peer, type Request, type RunTask, type Task } from './protocol.ts';

const TASK = 'bench';

/** Pool sizes stay well inside PostgreSQL's default max_connections (100). */
const MAX_POOL = 40;

/** The worker's options for a profile (GraphileConfig.WorkerOptions). */
function workerOptions(request: Request) {
  const { profile, concurrency } = request;
  if (profile === 'defaults') {
    const jobs = concurrency ?? 1;
    // As shipped: concurrentJobs 1, pollInterval 2000, maxPoolSize 10, no local queue, no batched
    // completion. A larger concurrency gets the pool the docs ask for: max(10, concurrentJobs + 2).
    return { concurrentJobs: jobs, maxPoolSize: Math.min(Math.max(10, jobs + 2), MAX_POOL) };
  }
  // performance.md's best-throughput configuration (concurrentJobs 24, maxPoolSize 25, localQueue
  // 500, batch delays 0), plus a short poll: a future job is only found by polling.
  const jobs = concurrency ?? 24;
  return {
    concurrentJobs: jobs,
    maxPoolSize: Math.min(Math.max(25, jobs + 1), MAX_POOL),
    pollInterval: 20,
    // The local queue hands jobs to workers; it must hold at least one per worker.
    localQueue: { size: Math.max(500, jobs + 1) },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
    // Due test against Node's clock, the clock the benchmark measures with.
    useNodeTime: true,
  };
}

// Warnings and errors only: at `info` the worker logs a line for every job it completes.
const logger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') log(`[graphile-worker] ${level}: ${message}`);
});

function utilsFor(request: Request) {
  return makeWorkerUtils({ connectionString: request.postgresUrl, schema: request.schema, logger });
}

/** A Date holds whole ms: round a fractional due up, so no job is due before its `due`. */
const runAt = (task: Task) => new Date(Math.ceil(task.due));
const spec = (task: Task) => ({ identifier: TASK, payload: task, runAt: runAt(task) });

export const graphileWorker: Peer = {
  async setup(request) {
    const utils = await utilsFor(request);
    try {
      await utils.migrate();
    } finally {
      await utils.release();
    }
  },

  async producer(request) {
    const utils = await utilsFor(request);
    return {
      async addOne(task) {
        await utils.addJob(TASK, task, { runAt: runAt(task) });
      },
      async addMany(tasks) {
        await utils.addJobs(tasks.map(spec)); // one add_jobs() call per chunk
      },
      close: async () => {
        await utils.release();
      },
    };
  },

  async work(request, runTask: RunTask) {
    if (request.leaseMs !== undefined) {
      // The open-source worker has no lease to shorten: a crashed worker's jobs stay locked for a
      // fixed 4 hours (only Worker Pro makes that configurable).
      log('graphile-worker: no configurable lock timeout (fixed 4 h); leaseMs ignored');
    }
    const events: WorkerEvents = new EventEmitter();
    // Ready = the pool's LISTEN is up (its workers poll from the start).
    const listening = new Promise<void>((resolve) => events.once('pool:listen:success', () => resolve()));
    const options = workerOptions(request);
    log(`graphile-worker ${request.profile}: ${JSON.stringify(options)}`);
    const runner = await run({
      connectionString: request.postgresUrl,
      schema: request.schema,
      logger,
      events,
      noHandleSignals: true, // the harness owns SIGTERM
      parsedCronItems: [], // no crontab file lookup
      taskList: { [TASK]: (payload) => runTask(payload as Task) },
      preset: { worker: options },
    });
    await listening;
    return () => runner.stop();
  },
};
