/**
 * `punctual migrate` and `serve` on DynamoDB (dynalite), and three nodes sharing one table: every
 * task delivered, none lost, when one node is killed -9 mid-run.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { Task } from '../../src/core/task.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { TaskStore } from '../../src/store/store.ts';
import { allSucceeded, createSpread, deliveries, heldBy, nodeId } from '../helpers/cluster.ts';
import { type DynamoServer, startDynamoServer, tableUrl } from '../helpers/dynamodb-server.ts';
import { type Receiver, startReceiver } from '../helpers/http-receiver.ts';
import { launchService, type ServiceProcess, startService } from '../helpers/service-process.ts';
import { waitUntil } from '../helpers/wait.ts';

const BIN = resolve(import.meta.dirname, '../../bin/punctual.js');
const NODE_ENV = { PUNCTUAL_LEASE_GRACE_MS: '5000' };
const TIMEOUT_MS = 5_000;

let server: DynamoServer | undefined;
let nodes: ServiceProcess[] = [];
let receiver: Receiver | undefined;
let observer: TaskStore | undefined;

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

describe('punctual on DynamoDB', () => {
  it('serve refuses a missing table and names the command; migrate creates it', { timeout: 60_000 }, async () => {
    server = await startDynamoServer('dynalite');
    const store = tableUrl(server.endpoint);
    const refused = launchService({ store });
    expect(await refused.exited).not.toBe(0);
    expect(refused.logs.join('\n')).toMatch(/does not exist: create it with `punctual migrate --store/);

    const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'migrate', '--store', store]);
    expect(stdout).toContain('migrations applied');
    nodes.push(await startService({ store }));
  });

  it('three nodes deliver 20,000 tasks, none lost when one is killed -9', { timeout: 900_000 }, async () => {
    server = await startDynamoServer('dynalite');
    // Four shards: the emulator serves a few hundred requests a second, and each poll reads every
    // shard a node holds.
    const store = tableUrl(server.endpoint, { shards: '4' });
    observer = await openStore(store, { create: true });
    receiver = await startReceiver();
    nodes = await Promise.all(Array.from({ length: 3 }, () => startService({ store, env: NODE_ENV })));
    // An emulator on two shared cores runs a few hundred tasks a second: due over 60 s, they queue.
    const firstDueAt = Date.now() + 30_000;
    const ids = await createSpread(nodes, {
      firstDueAt,
      count: 20_000,
      rate: 20_000 / 60,
      url: `${receiver.url}/dynamodb`,
      timeoutMs: TIMEOUT_MS,
    });

    await waitUntil(() => (receiver?.requests.length ?? 0) >= 3_000 || undefined, {
      timeoutMs: 200_000,
      what: '3,000 deliveries before the kill',
    });
    const victim = nodes[1] as ServiceProcess;
    const owner = nodeId(victim);
    await victim.kill('SIGKILL');
    const killedAt = Date.now();
    const held: Task[] = await heldBy(observer, owner);
    const mayRepeat = held.filter((t) => t.scheduledAt <= killedAt).length;

    await allSucceeded(observer, 20_000, 700_000);
    const byTask = deliveries(receiver);
    expect([...byTask.keys()].sort()).toEqual([...ids].sort()); // 0 lost, 0 missed
    expect(receiver.requests.length - byTask.size).toBeLessThanOrEqual(mayRepeat); // duplicates: its in-flight only
  });
});
