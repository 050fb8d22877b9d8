/**
 * pg-boss 12 (PostgreSQL). Settings and their sources: SETTINGS.md.
 */
import { type ConstructorOptions, PgBoss, type WorkOptions } from 'pg-boss';
import { log, type Peer, type Request, type RunTask, type Task } from './protocol.ts';

const MAX_POOL = 40;

/** Tuned: this many polling workers in the process (the docs suggest 2-4 with large batches). */
const TUNED_WORKERS = 4;
const TUNED_BATCH = 100;

/**
 * pg-boss's shortest expiry is 1 s (expireInSeconds >= 1), and it is fixed per job at insert time:
 * enqueue must be given leaseMs too. It bounds the whole handler run (it is not renewed).
 */
function expireInSeconds(request: Request): number | undefined {
  if (request.profile !== 'tuned' || request.leaseMs === undefined) return undefined;
  return Math.max(1, Math.ceil(request.leaseMs / 1000));
}

/** In flight at once = localConcurrency workers x batchSize jobs per fetch. */
function workOptions(request: Request): WorkOptions {
  const { profile, concurrency } = request;
  if (profile === 'defaults') {
    // As shipped: one worker, one job per fetch, a 2 s poll. `concurrency` adds workers.
    return concurrency === undefined ? {} : { localConcurrency: concurrency };
  }
  const workers = Math.min(TUNED_WORKERS, concurrency ?? TUNED_WORKERS);
  return {
    localConcurrency: workers,
    batchSize: concurrency === undefined ? TUNED_BATCH : Math.ceil(concurrency / workers),
    // Keep fetching while fetches come back full instead of sleeping between them.
    burstWhenBatchFull: true,
    pollingIntervalSeconds: 0.5, // the floor (MIN_POLLING_INTERVAL_MS)
    // With LISTEN/NOTIFY on, the backstop poll is what finds future jobs (NOTIFY covers only
    // jobs due now): keep it at the floor too.
    notifyPollingIntervalSeconds: 0.5,
  };
}

function bossFor(request: Request, extra: Partial<ConstructorOptions> = {}): PgBoss {
  const boss = new PgBoss({ connectionString: request.postgresUrl, schema: request.schema, ...extra });
  // An 'error' event without a listener would throw.
  boss.on('error', (error) => log(`[pg-boss] error: ${error.message}`));
  boss.on('warning', (warning) => log(`[pg-boss] warning: ${warning.message}`));
  return boss;
}

/** The producer process only inserts: no maintenance, cron or migration timers in it. */
const PRODUCER: Partial<ConstructorOptions> = { supervise: false, schedule: false, migrate: false };

export const pgBoss: Peer = {
  async setup(request) {
    const boss = bossFor(request);
    await boss.start(); // creates the schema and runs the migrations
    try {
      // Tuned queues emit NOTIFY for jobs inserted due now (the worker opts in with useListenNotify).
      await boss.createQueue(request.schema, request.profile === 'tuned' ? { notify: true } : {});
    } finally {
      await boss.stop({ graceful: false });
    }
  },

  async producer(request) {
    const boss = bossFor(request, PRODUCER);
    await boss.start();
    const queue = request.schema;
    const expire = expireInSeconds(request);
    const options = (task: Task) => ({
      startAfter: new Date(Math.ceil(task.due)), // whole ms, never before `due`
      ...(expire === undefined ? {} : { expireInSeconds: expire }),
    });
    return {
      async addOne(task) {
        await boss.send(queue, task, options(task));
      },
      async addMany(tasks) {
        await boss.insert(
          queue,
          tasks.map((task) => ({ data: task, ...options(task) })),
        );
      },
      close: () => boss.stop({ graceful: false }),
    };
  },

  async work(request, runTask: RunTask) {
    const options = workOptions(request);
    const inFlight = (options.localConcurrency ?? 1) * (options.batchSize ?? 1);
    const extra: Partial<ConstructorOptions> = {
      // Each polling worker needs a connection for its fetch and its completion.
      max: Math.min(Math.max(10, (options.localConcurrency ?? 1) + 2), MAX_POOL),
    };
    if (request.profile === 'tuned') extra.useListenNotify = true;
    if (request.profile === 'tuned' && request.leaseMs !== undefined) {
      // Expired jobs are failed (and retried) by the supervisor's pass over the queue, which runs
      // every max(superviseIntervalSeconds, monitorIntervalSeconds): both to their 1 s floor.
      extra.superviseIntervalSeconds = 1;
      extra.monitorIntervalSeconds = 1;
      log(`pg-boss: jobs enqueued with leaseMs expire after ${expireInSeconds(request)} s; supervise every 1 s`);
      if ((request.handlerMs ?? 0) >= expireInSeconds(request)! * 1000) {
        log('pg-boss: warning: handlerMs >= expireInSeconds: running jobs will time out and be retried');
      }
    }
    log(`pg-boss ${request.profile}: work ${JSON.stringify(options)}, ${JSON.stringify(extra)}, in flight ${inFlight}`);
    const boss = bossFor(request, extra);
    await boss.start();
    // The handler gets a batch (batchSize jobs) and settles it as a whole when it returns.
    await boss.work<Task>(request.schema, options, async (jobs) => {
      await Promise.all(jobs.map((job) => runTask(job.data)));
    });
    return () => boss.stop({ graceful: true });
  },
};
