/**
 * The table's key design (docs/dynamodb.md). One table, string keys `pk` and `sk`:
 *
 *   task#<id>                 / task        the task, its attempt log and its events
 *   due#<bucket start>#<shard> / <time>#<id> a schedule entry: the task is due (scheduled) or its
 *                                           lease ends (running) at <time>; one per unfinished task
 *   wm#<shard>                / wm          the shard's watermark: no entry lies in an earlier bucket
 *   shard#<shard>             / lease       which node scans the shard, until when
 *   nodes                     / <node>      the live nodes (heartbeats), to share the shards fairly
 *   idem#<[namespace, key]>   / idem        the task an idempotency key belongs to
 *
 * Times in sort keys are zero-padded epoch milliseconds, so that string order is time order.
 */

export const TASK_SK = 'task';
const TIME_DIGITS = 15;

export interface Key {
  pk: string;
  sk: string;
}

export function padTime(time: number): string {
  return String(Math.max(0, Math.floor(time))).padStart(TIME_DIGITS, '0');
}

export function taskKey(id: string): Key {
  return { pk: `task#${id}`, sk: TASK_SK };
}

/** A task's shard for life: FNV-1a of its id, so entries of one task always land in the same shard. */
export function shardOf(id: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % shards;
}

export function bucketStart(time: number, bucketMs: number): number {
  return Math.floor(time / bucketMs) * bucketMs;
}

/** `due#2026-12-01T10:05:00Z#7`: readable in the console, and one partition per bucket and shard. */
export function bucketPk(start: number, shard: number): string {
  return `due#${new Date(start).toISOString().replace('.000Z', 'Z')}#${shard}`;
}

/**
 * The entry of a task due (or whose lease ends) at `time`, written at `now`: in the bucket of its
 * time, or of now when that time has passed — so no entry is ever written behind the current
 * bucket, and a watermark never has to go back further than a clock-skew margin.
 */
export function entryKey(time: number, id: string, shard: number, bucketMs: number, now: number): Key {
  return { pk: bucketPk(bucketStart(Math.max(time, now), bucketMs), shard), sk: `${padTime(time)}#${id}` };
}

/** The time an entry's sort key holds. */
export function entryTime(sk: string): number {
  return Number(sk.slice(0, TIME_DIGITS));
}

export function entryTaskId(sk: string): string {
  return sk.slice(TIME_DIGITS + 1);
}

export function watermarkKey(shard: number): Key {
  return { pk: `wm#${shard}`, sk: 'wm' };
}

export function shardLeaseKey(shard: number): Key {
  return { pk: `shard#${shard}`, sk: 'lease' };
}

export const NODES_PK = 'nodes';

export function idempotencyKey(namespace: string, key: string): Key {
  return { pk: `idem#${JSON.stringify([namespace, key])}`, sk: 'idem' };
}

/** The list index's sort key: tasks listed in (scheduledAt, id) order. */
export function listSk(scheduledAt: number, id: string): string {
  return `${padTime(scheduledAt)}#${id}`;
}
