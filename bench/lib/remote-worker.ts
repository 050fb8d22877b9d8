// A remote worker process for the `workers` scenario: the SDK's Worker with a no-op handler that
// appends "<scheduled ms> <start ms>" per task to the log file given, one write each (O_APPEND).
// Usage: node remote-worker.ts <service url> <queue> <concurrency> <log file>
import { openSync, writeSync } from 'node:fs';
import { Worker } from '../../packages/client/src/index.ts';

const [url, queue, concurrency, logFile] = process.argv.slice(2) as [string, string, string, string];
const log = openSync(logFile, 'a');
const now = () => performance.timeOrigin + performance.now();
const worker = new Worker({
  url,
  queue,
  concurrency: Number(concurrency),
  handler: (task) => {
    writeSync(log, `${Date.parse(task.scheduled_date)} ${now()}\n`);
  },
});
worker.start();
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void worker.stop({ graceMs: 1_000 }).then(() => process.exit(0));
});
