/**
 * Several `punctual serve` processes on one PostgreSQL database, a webhook receiver counting every
 * delivery: exactly once in a clean run; nothing lost when a node is killed -9 mid-run; and a
 * database outage survived without a restart.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { Task } from '../../src/core/task.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { TaskStore } from '../../src/store/store.ts';
import { allSucceeded, createSpread, deliveries, heldBy, nodeId } from '../helpers/cluster.ts';
import { type Receiver, startReceiver } from '../helpers/http-receiver.ts';
import { type PostgresServer, startPostgresServer } from '../helpers/postgres-server.ts';
import { api, type ServiceProcess, startService } from '../helpers/service-process.ts';
import { waitUntil } from '../helpers/wait.ts';

// Webhook round trips to a receiver sharing two cores with three nodes and the database take
// tens of ms: more slots per node keep tasks from queueing behind them.
const NODE_ENV = { PUNCTUAL_LEASE_GRACE_MS: '1000', PUNCTUAL_CONCURRENCY: '500' };
// Generous: on two shared cores a receiver can take seconds to answer, and a timed-out attempt is
// retried, which would count as a duplicate that no kill caused.
const TIMEOUT_MS = 5_000;

let nodes: ServiceProcess[] = [];
let receiver: Receiver | undefined;
let observer: TaskStore | undefined;
let server: PostgresServer | undefined;

afterEach(async () => {
  await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
  nodes = [];
  await receiver?.close();
  await observer?.close();
  await server?.stop();
  receiver = undefined;
  observer = undefined;
  server = undefined;
});

function schemaUrl(base: string): string {
  const url = new URL(base);
  url.searchParams.set('schema', `cluster_${randomBytes(4).toString('hex')}`);
  return url.toString();
}

async function startCluster(store: string, size: number): Promise<void> {
  nodes = await Promise.all(Array.from({ length: size }, () => startService({ store, env: NODE_ENV })));
}

describe('three nodes on one PostgreSQL database', () => {
  it('deliver 30,000 webhook tasks due over 30 s exactly once', { timeout: 150_000 }, async () => {
    const store = schemaUrl(inject('postgresUrl'));
    receiver = await startReceiver();
    observer = await openStore(store);
    await startCluster(store, 3);
    const ids = await createSpread(nodes, {
      firstDueAt: Date.now() + 10_000,
      count: 30_000,
      rate: 1_000,
      url: `${receiver.url}/once`,
      timeoutMs: TIMEOUT_MS,
    });

    await allSucceeded(observer, 30_000, 90_000);
    const byTask = deliveries(receiver);
    expect(byTask.size).toBe(30_000); // 0 missing
    expect([...byTask.keys()].sort()).toEqual([...ids].sort());
    expect(receiver.requests.length - byTask.size).toBe(0); // 0 duplicates
  });

  it('lose nothing when one node is killed -9 and restarted twice', { timeout: 200_000 }, async () => {
    const store = schemaUrl(inject('postgresUrl'));
    receiver = await startReceiver();
    observer = await openStore(store);
    await startCluster(store, 3);
    const firstDueAt = Date.now() + 10_000;
    const ids = await createSpread(nodes, {
      firstDueAt,
      count: 30_000,
      rate: 1_000,
      url: `${receiver.url}/kill`,
      timeoutMs: TIMEOUT_MS,
    });

    let mayRepeat = 0;
    // Each orphan as the last killed node held it. The first victim's leases end up to lookahead +
    // timeout + grace (8 s) after its kill, when the second kill comes: the restarted node, the
    // emptiest, takes over many of them and is killed before it delivers some. Those are held
    // under its lease now and can only be taken over once that one has ended too.
    const orphaned = new Map<string, Task>();
    for (const killAt of [firstDueAt + 8_000, firstDueAt + 16_000]) {
      await waitUntil(() => Date.now() >= killAt || undefined, { timeoutMs: 30_000, what: 'the kill time' });
      const victim = nodes[1] as ServiceProcess;
      const owner = nodeId(victim);
      await victim.kill('SIGKILL');
      const killedAt = Date.now();
      const held = await heldBy(observer, owner);
      for (const task of held) orphaned.set(task.id, task);
      // Only tasks whose time had come can have been delivered before the kill.
      mayRepeat += held.filter((t) => t.scheduledAt <= killedAt).length;
      nodes[1] = await startService({ store, env: NODE_ENV });
    }
    expect(orphaned.size).toBeGreaterThan(0);

    await allSucceeded(observer, 30_000, 90_000);
    const byTask = deliveries(receiver);
    expect([...byTask.keys()].sort()).toEqual([...ids].sort()); // 0 lost
    const repeated = [...byTask.entries()].filter(([, times]) => times.length > 1).map(([id]) => id);
    const orphanIds = new Set(orphaned.keys());
    expect(
      receiver.requests.length - byTask.size,
      `repeats of tasks the dead node did not hold: ${repeated.filter((id) => !orphanIds.has(id)).length}`,
    ).toBeLessThanOrEqual(mayRepeat);
    // The dead node's tasks were taken over once its leases expired, not much later.
    const slackMs = 3_000;
    for (const task of orphaned.values()) {
      const times = byTask.get(task.id) ?? [];
      expect(Math.max(...times)).toBeLessThanOrEqual((task.leaseExpiresAt as number) + slackMs);
    }
  });
});

describe('a PostgreSQL outage', () => {
  it('answers 503 quickly while the database is down and recovers by itself', { timeout: 150_000 }, async () => {
    server = await startPostgresServer();
    const store = schemaUrl(server.url);
    receiver = await startReceiver();
    await startCluster(store, 1);
    const node = nodes[0] as ServiceProcess;
    const firstDueAt = Date.now() + 5_000;
    const ids = await createSpread(nodes, {
      firstDueAt,
      count: 5_000,
      rate: 250,
      url: `${receiver.url}/outage`,
      timeoutMs: TIMEOUT_MS,
    });

    await waitUntil(() => Date.now() >= firstDueAt + 5_000 || undefined, { timeoutMs: 20_000, what: 'mid-run' });
    await server.down();
    const downAt = Date.now();
    const started = Date.now();
    const refused = await api(node.url, '/v1/tasks', {
      body: { name: 'during-outage', scheduled_date: new Date().toISOString() },
    });
    expect(Date.now() - started).toBeLessThan(5_000); // no hang
    expect(refused.status).toBe(503);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(refused.body.code).toBe('PUNCTUAL_STORE_UNAVAILABLE');
    expect(JSON.stringify(refused.body)).not.toMatch(/\bat .*\.ts:\d+/); // no stack trace

    await waitUntil(() => Date.now() >= downAt + 10_000 || undefined, { timeoutMs: 20_000, what: '10 s of outage' });
    await server.up();
    // The same process, no restart: it serves again and every acknowledged task runs.
    const after = await waitUntil(
      async () => {
        const res = await api(node.url, '/v1/tasks', {
          body: {
            name: 'after',
            scheduled_date: new Date().toISOString(),
            target: { type: 'http', url: `${receiver?.url}/after` },
          },
        });
        return res.status === 201 ? res : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: 'the API to accept tasks again' },
    );
    observer = await openStore(store);
    await allSucceeded(observer, 5_001, 90_000);
    const byTask = deliveries(receiver);
    for (const id of [...ids, after.body.id]) expect(byTask.has(id)).toBe(true); // none lost
  });
});
