/**
 * What the many-node tests share, whatever the store: webhook tasks spread over the nodes, the
 * receiver's deliveries per task, the tasks a (killed) node held, and waiting for the outcome.
 */
import { expect } from 'vitest';
import type { Task } from '../../src/core/task.ts';
import type { TaskStore } from '../../src/store/store.ts';
import type { Receiver } from './http-receiver.ts';
import { api, type ServiceProcess } from './service-process.ts';
import { waitUntil } from './wait.ts';

/** The node id a service logged at start ("dispatcher started"). */
export function nodeId(node: ServiceProcess): string {
  for (const line of node.logs) {
    const match = /"node":"([^"]+)".*dispatcher started/.exec(line);
    if (match) return match[1] as string;
  }
  throw new Error('the node did not log its id');
}

/**
 * Creates `count` webhook tasks due at `rate` per second from `firstDueAt`, in batches of 1,000
 * spread over the nodes, and checks they were all created before the first was due.
 */
export async function createSpread(
  nodes: ServiceProcess[],
  options: { firstDueAt: number; count: number; rate: number; url: string; timeoutMs: number },
): Promise<string[]> {
  const ids: string[] = [];
  for (let offset = 0; offset < options.count; offset += 1_000) {
    const tasks = Array.from({ length: Math.min(1_000, options.count - offset) }, (_, i) => ({
      name: 'cluster',
      scheduled_date: new Date(options.firstDueAt + Math.floor(((offset + i) * 1_000) / options.rate)).toISOString(),
      timeout_ms: options.timeoutMs,
      target: { type: 'http', url: options.url },
    }));
    const node = nodes[(offset / 1_000) % nodes.length] as ServiceProcess;
    const { status, body } = await api(node.url, '/v1/tasks/batch', { body: { tasks } });
    expect(status).toBe(200);
    ids.push(...body.results.map((r: { task: { id: string } }) => r.task.id));
  }
  expect(Date.now()).toBeLessThan(options.firstDueAt); // all created before the first is due
  return ids;
}

/** The receiver's deliveries, per task id: when each arrived. */
export function deliveries(receiver: Receiver): Map<string, number[]> {
  const byTask = new Map<string, number[]>();
  for (const request of receiver.requests) {
    const id = String(request.headers['punctual-task-id']);
    byTask.set(id, [...(byTask.get(id) ?? []), request.receivedAt]);
  }
  return byTask;
}

/** Tasks leased to `owner` (started, or about to be): those a kill may repeat. */
export async function heldBy(store: TaskStore, owner: string): Promise<Task[]> {
  const held: Task[] = [];
  let after: { scheduledAt: number; id: string } | undefined;
  for (;;) {
    const page = await store.taskList({ state: 'running', limit: 1_000, after });
    held.push(...page.filter((t) => t.leaseOwner === owner));
    const last = page.at(-1);
    if (!last || page.length < 1_000) return held;
    after = { scheduledAt: last.scheduledAt, id: last.id };
  }
}

export async function allSucceeded(store: TaskStore, count: number, timeoutMs: number): Promise<void> {
  await waitUntil(async () => (await store.taskCountByState()).succeeded === count || undefined, {
    timeoutMs,
    intervalMs: 500,
    what: `${count} tasks to succeed`,
  });
}
