/**
 * BullMQ 6 on Redis (through ioredis). The queue is named `schema`, with BullMQ's default key
 * prefix (`bull:<schema>:*`). Settings and their sources: SETTINGS.md.
 */
import type { EventEmitter } from 'node:events';
import { Queue, Worker, type WorkerOptions } from 'bullmq';
import { log, type Peer, type Request, type RunTask, type Task } from './protocol.ts';

const JOB = 'bench';

function workerOptions(request: Request): Omit<WorkerOptions, 'connection'> {
  if (request.profile === 'defaults') {
    // As shipped: concurrency 1, drainDelay 5 s, lockDuration and stalledInterval 30 s.
    return request.concurrency === undefined ? {} : { concurrency: request.concurrency };
  }
  // There is no poll to shorten: the worker blocks until the next delayed job is due or a new one
  // is added, so concurrency is the only knob (drainDelay only matters on an empty queue).
  const options: Omit<WorkerOptions, 'connection'> = { concurrency: request.concurrency ?? 100 };
  if (request.leaseMs !== undefined) {
    // A crashed worker's job is retried once its lock has expired and a stalled check has seen it
    // twice. Neither option has a floor; locks are renewed every lockDuration / 2.
    options.lockDuration = request.leaseMs;
    options.stalledInterval = request.leaseMs;
  }
  return options;
}

/**
 * BullMQ schedules at `timestamp + delay`, its timestamp defaulting to its own later Date.now():
 * pass the instant the delay was computed from, so the job is due at `due` (in whole ms, never
 * before it) rather than a few ms later.
 */
function jobOptions(task: Task, now: number) {
  return { timestamp: now, delay: Math.max(0, Math.ceil(task.due - now)) };
}

/**
 * Waits for the connection, failing on its first error: ioredis would otherwise retry forever
 * against a Redis that is not there.
 */
async function connected(client: EventEmitter & { waitUntilReady(): Promise<unknown> }): Promise<void> {
  let onError: (error: Error) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    onError = reject;
  });
  client.on('error', onError);
  try {
    await Promise.race([client.waitUntilReady(), failed]);
  } finally {
    client.off('error', onError);
  }
}

export const bullmq: Peer = {
  async setup(request) {
    // Nothing to create: check that Redis answers (BullMQ also checks its version and warns
    // unless maxmemory-policy is noeviction).
    const queue = new Queue<Task>(request.schema, { connection: { url: request.redisUrl } });
    try {
      await connected(queue);
    } finally {
      await queue.close();
    }
  },

  async producer(request) {
    const queue = new Queue<Task>(request.schema, { connection: { url: request.redisUrl } });
    await connected(queue);
    queue.on('error', (error) => log(`[bullmq] queue error: ${error.message}`));
    return {
      async addOne(task) {
        await queue.add(JOB, task, jobOptions(task, Date.now()));
      },
      async addMany(tasks) {
        const now = Date.now();
        // One atomic MULTI per chunk.
        await queue.addBulk(tasks.map((task) => ({ name: JOB, data: task, opts: jobOptions(task, now) })));
      },
      close: () => queue.close(),
    };
  },

  async work(request, runTask: RunTask) {
    const options = workerOptions(request);
    log(`bullmq ${request.profile}: ${JSON.stringify(options)}`);
    const worker = new Worker<Task>(request.schema, (job) => runTask(job.data), {
      connection: { url: request.redisUrl },
      ...options,
    });
    await connected(worker);
    worker.on('error', (error) => log(`[bullmq] worker error: ${error.message}`));
    worker.on('failed', (job, error) => log(`[bullmq] job ${job?.id} failed: ${error.message}`));
    return () => worker.close(); // waits for the jobs in flight
  },
};
