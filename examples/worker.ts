/**
 * A remote worker in a few lines: serve the queue that tasks named "send-report" go to.
 *
 *   npm start &                      # a service on http://127.0.0.1:8080
 *   node examples/worker.ts          # (PUNCTUAL_URL, PUNCTUAL_API_KEY if keys are configured)
 *
 * It schedules three tasks with just a name, a description and a time (no target: the service
 * has no handler for the name, so they wait in the "send-report" queue), runs them as they fall
 * due, and stops on Ctrl-C, finishing what it has started.
 */
import { PermanentError, PunctualClient, Worker } from '../packages/client/src/index.ts';

const url = process.env.PUNCTUAL_URL ?? 'http://127.0.0.1:8080';
const apiKey = process.env.PUNCTUAL_API_KEY;

const worker = new Worker({
  url,
  apiKey,
  queue: 'send-report',
  concurrency: 5,
  handler: async (task, { signal }) => {
    const lateMs = Date.now() - Date.parse(task.scheduled_date);
    console.log(`running ${task.description} (attempt ${task.attempts}, ${lateMs} ms after its time)`);
    if (task.payload === 'bad') throw new PermanentError('nothing to report'); // fails at once, no retry
    await new Promise((resolve) => setTimeout(resolve, 200)); // the work; `signal` aborts on a lost lease
    signal.throwIfAborted();
  },
  onError: (error) => console.warn(`worker: ${(error as Error).message}; retrying`),
});
worker.start();

const client = new PunctualClient({ url, apiKey });
for (let i = 1; i <= 3; i++) {
  await client.create({
    name: 'send-report',
    description: `report ${i}`,
    scheduled_date: new Date(Date.now() + i * 1_000),
  });
}
console.log('scheduled 3 reports, 1 s apart; Ctrl-C to stop');

process.on('SIGINT', () => {
  void worker.stop().then(() => process.exit(0));
});
