/**
 * Which shards a node scans. Nodes register with a heartbeat item; each takes leases on at most
 * its fair share of the shards (ceil(shards / live nodes)), renews them, and gives back the ones
 * beyond its share when more nodes join. A dead node's leases lapse and others take them over.
 *
 * Ownership only decides who *looks* at a shard; every claim is still a conditional write on the
 * task, so two nodes that briefly both scan a shard (a lease taken over while its old holder is
 * still finishing a scan) can never both claim a task.
 */
import type { Db } from './db.ts';
import { NODES_PK, shardLeaseKey } from './keys.ts';

/** A lease not renewed for this long is free; nodes renew at a third of it. */
export const SHARD_LEASE_MS = 15_000;
const RENEW_EVERY_MS = SHARD_LEASE_MS / 3;

export class ShardLeases {
  private readonly db: Db;
  private readonly shards: number;
  /** Per node (lease owner): the shards it holds and when it last renewed them. */
  private readonly nodes = new Map<string, { held: Set<number>; renewedAt: number }>();

  constructor(db: Db, shards: number) {
    this.db = db;
    this.shards = shards;
  }

  /** The shards `owner` scans now, renewing or rebalancing its leases when they are due. */
  async owned(owner: string, now = Date.now()): Promise<number[]> {
    let node = this.nodes.get(owner);
    if (!node || now - node.renewedAt >= RENEW_EVERY_MS || now < node.renewedAt) {
      node = { held: await this.rebalance(owner, node?.held ?? new Set(), now), renewedAt: now };
      this.nodes.set(owner, node);
    }
    return [...node.held];
  }

  private async rebalance(owner: string, held: Set<number>, now: number): Promise<Set<number>> {
    const expiresAt = now + SHARD_LEASE_MS;
    await this.db.put({ pk: NODES_PK, sk: owner, expires_at: expiresAt });
    const { items: nodes } = await this.db.query({
      KeyConditionExpression: 'pk = :pk',
      FilterExpression: 'expires_at > :now',
      values: { ':pk': NODES_PK, ':now': now },
    });
    const share = Math.ceil(this.shards / Math.max(1, nodes.length));
    const kept = new Set<number>();
    // Renew what we hold, up to our share; give back the rest so joining nodes can take it.
    for (const shard of held) {
      if (kept.size < share && (await this.take(shard, owner, now, expiresAt))) kept.add(shard);
      else if (kept.size >= share) await this.release(shard, owner);
    }
    // Then free or lapsed shards, starting at a different place for each node to avoid collisions.
    const offset = Math.floor(Math.random() * this.shards);
    for (let i = 0; i < this.shards && kept.size < share; i++) {
      const shard = (offset + i) % this.shards;
      if (!kept.has(shard) && (await this.take(shard, owner, now, expiresAt))) kept.add(shard);
    }
    return kept;
  }

  private take(shard: number, owner: string, now: number, expiresAt: number): Promise<boolean> {
    return this.db.put(
      { ...shardLeaseKey(shard), owner, expires_at: expiresAt },
      'attribute_not_exists(pk) OR expires_at < :now OR #owner = :me',
      { ':now': now, ':me': owner },
      { '#owner': 'owner' },
    );
  }

  private async release(shard: number, owner: string): Promise<void> {
    await this.db
      .delete(shardLeaseKey(shard), '#owner = :me', { ':me': owner }, { '#owner': 'owner' })
      .catch(() => false);
  }

  /** Gives back every lease this process holds (a clean stop hands shards over at once). */
  async releaseAll(): Promise<void> {
    const all = [...this.nodes.entries()];
    this.nodes.clear();
    for (const [owner, node] of all) {
      for (const shard of node.held) await this.release(shard, owner);
      await this.db.delete({ pk: NODES_PK, sk: owner }).catch(() => false);
    }
  }
}
