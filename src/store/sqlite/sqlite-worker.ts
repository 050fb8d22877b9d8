/**
 * The worker thread that owns the SQLite connection of a ThreadedSqliteStore. It runs each
 * TaskStore call it is sent, one at a time, and answers with the result or the error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteStore } from './sqlite-store.ts';

export interface StoreCall {
  id: number;
  method: string;
  params: unknown;
}

export type StoreReply =
  | { id: number; result: unknown }
  | { id: number; error: { name: string; message: string; code?: unknown } };

const port = parentPort;
if (!port) throw new Error('sqlite-worker.ts runs as a worker thread');

const store = SqliteStore.open({ path: (workerData as { path: string }).path });
const methods = store as unknown as Record<string, (params: unknown) => Promise<unknown>>;

port.on('message', async ({ id, method, params }: StoreCall) => {
  try {
    const result = await methods[method]?.call(store, params);
    port.postMessage({ id, result } satisfies StoreReply);
  } catch (caught) {
    const error = caught as Error & { code?: unknown };
    port.postMessage({
      id,
      error: { name: error.name, message: error.message, code: error.code },
    } satisfies StoreReply);
  }
});
