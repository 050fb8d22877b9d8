/**
 * Peer harness for graphile-worker, pg-boss and BullMQ: `node harness.ts '<json>'`.
 * The protocol (commands, fields, record file) is in ../README.md; settings in SETTINGS.md.
 */
import { emit, fail } from '../protocol.ts';
import { type Peer, parseRequest, type Request, type System, taskAt, taskRunner } from './protocol.ts';

/** Loaded on demand: only the chosen peer's client library, and signal handlers are in place first. */
const PEERS: Record<System, () => Promise<Peer>> = {
  'graphile-worker': async () => (await import('./graphile-worker.ts')).graphileWorker,
  'pg-boss': async () => (await import('./pg-boss.ts')).pgBoss,
  bullmq: async () => (await import('./bullmq.ts')).bullmq,
};

/** Longest a graceful stop may take before the harness gives up (in-flight handlers included). */
const STOP_TIMEOUT_MS = 60_000;

// stdout carries protocol events only: route any library console output to stderr.
console.log = console.info = console.debug = console.error;

/** ingest / enqueue: only the adds are timed, not connecting. */
async function load(peer: Peer, request: Request): Promise<void> {
  const count = request.count!;
  const producer = await peer.producer(request);
  const started = performance.now();
  if (request.api === 'single') {
    for (let i = 0; i < count; i++) await producer.addOne(taskAt(request, i));
  } else {
    const size = request.batchSize!;
    for (let first = 0; first < count; first += size) {
      const tasks = [];
      for (let i = first; i < Math.min(first + size, count); i++) tasks.push(taskAt(request, i));
      await producer.addMany(tasks);
    }
  }
  const ms = performance.now() - started;
  await producer.close();
  emit({ event: 'done', count, ms });
}

let command: Request['command'] | undefined;
/** The worker's graceful stop, once it is up. */
let stopWorker: (() => Promise<void>) | undefined;
let terminating = false;

function onSignal(signal: NodeJS.Signals): void {
  if (command !== 'work') fail(`interrupted by ${signal}`);
  if (terminating) return;
  terminating = true;
  if (stopWorker) stopGracefully(stopWorker); // else work() stops it as soon as it is up
}

function stopGracefully(stop: () => Promise<void>): void {
  setTimeout(() => fail(`graceful stop took over ${STOP_TIMEOUT_MS} ms`), STOP_TIMEOUT_MS).unref();
  stop().then(() => process.exit(0), fail);
}

/** work: runs until SIGTERM (graceful stop, exit 0) or SIGKILL. */
async function work(peer: Peer, request: Request): Promise<void> {
  stopWorker = await peer.work(request, taskRunner(request.recordFile!, request.handlerMs));
  emit({ event: 'ready' });
  if (terminating) stopGracefully(stopWorker);
}

async function main(): Promise<void> {
  const request = parseRequest(process.argv[2]);
  command = request.command;
  const peer = await PEERS[request.system]();
  if (request.command === 'work') return work(peer, request);
  if (request.command === 'setup') await peer.setup(request);
  else await load(peer, request);
  process.exit(0); // the peers' client pools and timers would otherwise keep the process alive
}

process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);
process.on('unhandledRejection', fail);
main().catch(fail);
