/**
 * The shared TaskStore conformance suite against two independent DynamoDB-compatible servers,
 * dynalite (npm) and moto (PyPI), both started here; plus the DynamoDB-only checks.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Db, makeClient } from '../../src/store/dynamodb/db.ts';
import { DynamoStore } from '../../src/store/dynamodb/dynamodb-store.ts';
import { entryKey, taskKey } from '../../src/store/dynamodb/keys.ts';
import { SHARD_LEASE_MS, ShardLeases } from '../../src/store/dynamodb/shard-leases.ts';
import { Watermarks } from '../../src/store/dynamodb/watermarks.ts';
import { type DynamoServer, type DynamoServerKind, startDynamoServer, tableUrl } from '../helpers/dynamodb-server.ts';
import { makeTask } from '../helpers/task-factory.ts';
import { describeTaskStoreConformance } from './task-store.conformance.ts';

// moto answers in tens of milliseconds and reads whole tables for a query: the 1,000-task tests
// take it well over the default timeout.
vi.setConfig({ testTimeout: 180_000 });

for (const kind of ['dynalite', 'moto'] as DynamoServerKind[]) {
  describe(kind, () => {
    let server: DynamoServer;
    beforeAll(async () => {
      server = await startDynamoServer(kind);
    }, 300_000); // the first moto start builds its venv
    afterAll(async () => {
      await server?.stop();
    });

    // One process plays every node in these tests: each claim scans every shard.
    describeTaskStoreConformance(`dynamodb (${kind})`, async () => {
      const store = await DynamoStore.open({
        url: tableUrl(server.endpoint, { shards: '4', shard_leases: 'false' }),
        create: true,
      });
      return { store, cleanup: () => store.close() };
    });
  });
}

describe('dynamodb store (dynalite): partitions, watermarks and shard leases', () => {
  let server: DynamoServer;
  const stores: DynamoStore[] = [];
  const T0 = Date.UTC(2026, 11, 1, 10, 0, 0);
  const MINUTE = 60_000;
  const LEASE_A = { owner: 'node-a', graceMs: 1_000 };
  const LEASE_B = { owner: 'node-b', graceMs: 1_000 };

  beforeAll(async () => {
    server = await startDynamoServer('dynalite');
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await server?.stop();
  });

  async function open(options: Record<string, string> = {}, url = tableUrl(server.endpoint, options)) {
    const store = await DynamoStore.open({ url, create: true });
    stores.push(store);
    return store;
  }

  const due = (scheduledAt: number) => makeTask({ scheduledAt, createdAt: T0, updatedAt: T0 });

  it('refuses to open a table that does not exist, naming the command that creates it', async () => {
    const url = tableUrl(server.endpoint);
    await expect(DynamoStore.open({ url })).rejects.toThrow(/does not exist: create it with `punctual migrate --store/);
    stores.push(await DynamoStore.open({ url, create: true }));
    const again = await DynamoStore.open({ url });
    stores.push(again);
    expect(await again.taskCountByState()).toMatchObject({ scheduled: 0 });
  });

  it('keys schedule entries by time bucket and write shard', async () => {
    const store = await open({ bucket: '1m', shards: '4', shard_leases: 'false' });
    const [created] = await store.taskCreate({ tasks: [due(T0 + 5 * MINUTE + 1_234)], now: T0 });
    const id = (created as { task: { id: string } }).task.id;
    const db = new Db(makeClient(store.config), store.config.table);
    const item = await db.get(taskKey(id));
    expect(item?.entry_pk).toMatch(/^due#2026-12-01T10:05:00Z#[0-3]$/);
    expect(item?.entry_sk).toBe(`${String(T0 + 5 * MINUTE + 1_234).padStart(15, '0')}#${id}`);
  });

  it('finds a task created for a time long past after the watermark has moved on', async () => {
    const store = await open({ bucket: '1m', shards: '1', shard_leases: 'false' });
    await store.taskCreate({ tasks: [due(T0), due(T0 + 10 * MINUTE)], now: T0 });
    const [first] = (await store.taskClaimDue({ lease: LEASE_A, now: T0, lookaheadMs: 1, limit: 10 })).claimed;
    const done = { id: first?.id as string, leaseToken: first?.leaseToken as string, startedAt: T0, endedAt: T0 };
    await store.taskComplete({ outcomes: [{ ...done, kind: 'succeeded' }], now: T0 });
    // Twenty minutes on: every watermark passes the empty buckets up to the current one.
    const later = T0 + 20 * MINUTE;
    expect((await store.taskClaimDue({ lease: LEASE_A, now: later, lookaheadMs: 1, limit: 10 })).claimed).toHaveLength(
      1,
    );
    // A claim moves a watermark past the buckets it found empty before it claimed (and its own
    // lease-expiry entries touch it): the next claim passes the bucket the first one emptied.
    await store.taskClaimDue({ lease: LEASE_A, now: later, lookaheadMs: 1, limit: 10 });
    const marks = new Watermarks(new Db(makeClient(store.config), store.config.table), MINUTE);
    expect((await marks.read(0)).bucket).toBe(later);
    // A task due yesterday, created now: its entry lands in the current bucket, and is claimed.
    await store.taskCreate({ tasks: [due(T0 - 24 * 60 * MINUTE)], now: later });
    const { claimed } = await store.taskClaimDue({ lease: LEASE_A, now: later, lookaheadMs: 1, limit: 10 });
    expect(claimed.map((t) => t.scheduledAt)).toEqual([T0 - 24 * 60 * MINUTE]);
  });

  it('a claimer does not advance a watermark a writer touched after it was read', async () => {
    const store = await open({ shards: '1', shard_leases: 'false' });
    const marks = new Watermarks(new Db(makeClient(store.config), store.config.table), MINUTE);
    await marks.touch(0, T0);
    const seen = await marks.read(0);
    await marks.touch(0, T0); // a writer lands an entry in the bucket the claimer is about to pass
    expect(await marks.advance(0, seen, T0 + MINUTE)).toBe(false);
    expect((await marks.read(0)).bucket).toBe(T0);
    expect(await marks.advance(0, await marks.read(0), T0 + MINUTE)).toBe(true);
    // A write landing behind the watermark lowers it again.
    await marks.touch(0, T0);
    expect((await marks.read(0)).bucket).toBe(T0);
  });

  it('keeps a young entry whose task is not written yet, and clears it once old', async () => {
    const store = await open({ shards: '1', shard_leases: 'false' });
    const db = new Db(makeClient(store.config), store.config.table);
    await store.taskCreate({ tasks: [due(T0 + MINUTE)], now: T0 }); // gives the shard a watermark
    const orphan = entryKey(T0, 'no-such-task', 0, MINUTE, T0);
    // What a writer that crashed before writing its task leaves: the entry, and the watermark touched.
    await db.put({ ...orphan, id: 'no-such-task', written_at: T0 });
    await new Watermarks(db, MINUTE).touch(0, T0);
    await store.taskClaimDue({ lease: LEASE_A, now: T0 + 1_000, lookaheadMs: 1, limit: 10 });
    expect(await db.get(orphan)).not.toBeNull(); // its writer may still be about to write the task
    await store.taskClaimDue({ lease: LEASE_A, now: T0 + 10 * MINUTE, lookaheadMs: 1, limit: 10 });
    expect(await db.get(orphan)).toBeNull();
  });

  it('shares the shards among live nodes and takes over those of a node that stopped', async () => {
    const store = await open({ shards: '8' });
    const leases = new ShardLeases(new Db(makeClient(store.config), store.config.table), 8);
    expect(await leases.owned('node-a', T0)).toHaveLength(8);
    expect(await leases.owned('node-b', T0)).toHaveLength(0); // all held: b waits for a to give some back
    const renew = T0 + SHARD_LEASE_MS / 2;
    const a = await leases.owned('node-a', renew); // a sees two nodes: keeps its share, frees the rest
    const b = await leases.owned('node-b', renew);
    expect(a).toHaveLength(4);
    expect(b).toHaveLength(4);
    expect(new Set([...a, ...b]).size).toBe(8);
    // b stops renewing; once its leases lapse, a takes every shard back.
    const lapsed = renew + SHARD_LEASE_MS + 1;
    expect((await leases.owned('node-a', lapsed)).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('with shard leases, two nodes claim every task once between them', async () => {
    const store = await open({ shards: '8' });
    await store.taskCreate({ tasks: Array.from({ length: 40 }, (_, i) => due(T0 + i)), now: T0 });
    const claim = (lease: typeof LEASE_A, now: number) =>
      store.taskClaimDue({ lease, now, lookaheadMs: 1_000, limit: 100 });
    const first = await claim(LEASE_A, T0); // a alone: every shard
    await claim(LEASE_B, T0 + SHARD_LEASE_MS / 2); // b joins
    await claim(LEASE_A, T0 + SHARD_LEASE_MS / 2); // a gives back half
    expect(first.claimed).toHaveLength(40);
    await store.taskCreate({ tasks: Array.from({ length: 40 }, (_, i) => due(T0 + 100 + i)), now: T0 });
    const at = T0 + SHARD_LEASE_MS / 2 + SHARD_LEASE_MS / 3; // b renews, taking the shards a gave back
    const [a, b] = [await claim(LEASE_A, at), await claim(LEASE_B, at)];
    expect(a.claimed.length).toBeGreaterThan(0);
    expect(b.claimed.length).toBeGreaterThan(0);
    const ids = [...a.claimed, ...b.claimed].map((t) => t.id);
    expect(new Set(ids).size).toBe(40);
  });
});
