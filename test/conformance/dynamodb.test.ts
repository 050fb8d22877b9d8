/**
 * The shared TaskStore conformance suite against two independent DynamoDB-compatible servers,
 * dynalite (npm) and moto (PyPI), both started here; plus the DynamoDB-only checks.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, vi } from 'vitest';
import { DynamoStore } from '../../src/store/dynamodb/dynamodb-store.ts';
import { type DynamoServer, type DynamoServerKind, startDynamoServer } from '../helpers/dynamodb-server.ts';
import { describeTaskStoreConformance } from './task-store.conformance.ts';

export function tableUrl(endpoint: string, options: Record<string, string> = {}): string {
  const query = new URLSearchParams({ endpoint, region: 'us-east-1', ...options });
  return `dynamodb://t_${randomBytes(6).toString('hex')}?${query}`;
}

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
