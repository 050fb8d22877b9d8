/** The real `punctual serve` child process, tracked by PID and always stopped. */
import { type ServiceProcess, startService } from '../../test/helpers/service-process.ts';
import { type FreshStore, trackChild, untrackChild } from './env.ts';
import { note } from './stats.ts';

export async function withService<T>(fresh: FreshStore, fn: (service: ServiceProcess) => Promise<T>): Promise<T> {
  // Open once first, as `punctual migrate` would: `serve` never creates a DynamoDB table.
  await (await fresh.open()).close();
  const service = await startService({ store: fresh.url });
  trackChild(service.pid);
  try {
    return await fn(service);
  } finally {
    await stopService(service);
  }
}

/** SIGTERM (graceful: the store is closed cleanly), then SIGKILL by PID if it hangs. */
export async function stopService(service: ServiceProcess): Promise<void> {
  const killer = setTimeout(() => {
    note(`  service ${service.pid} did not stop within 15 s; killing it`);
    try {
      process.kill(service.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }, 15_000);
  try {
    await service.kill('SIGTERM');
  } finally {
    clearTimeout(killer);
    untrackChild(service.pid);
  }
}
