/** The real `punctual serve` child process, tracked by PID and always stopped. */
import { type ServiceProcess, startService } from '../../test/helpers/service-process.ts';
import { trackChild, untrackChild } from './env.ts';
import { note } from './stats.ts';

export async function withService<T>(storeUrl: string, fn: (service: ServiceProcess) => Promise<T>): Promise<T> {
  const service = await startService({ store: storeUrl });
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
