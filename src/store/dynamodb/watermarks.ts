/**
 * Per-shard watermarks: the start of the oldest bucket that may hold a schedule entry. Claims scan
 * a shard from its watermark, never from the beginning of time, and move it forward past buckets
 * they found empty; the guarantee that no bucket holding an unfinished task is ever skipped rests
 * on two rules:
 *
 * - A writer puts its entry first, then `touch`es the watermark: it bumps a counter and, when the
 *   watermark is later than the entry's bucket, lowers it to that bucket (tasks created for a past
 *   time, retries due now, lease-expiry entries of claimed tasks).
 * - A claimer reads the watermark (bucket, counter), scans, and advances it only if the counter is
 *   unchanged: a write that landed in a bucket after the claimer scanned it has touched the counter
 *   (the advance fails and is tried again later), or touches it after the advance (and lowers the
 *   watermark back to its bucket). Either way the entry is found.
 *
 * Entries far in the future (past the current bucket plus a clock-skew margin) cannot lie behind
 * any watermark, which never passes the current bucket: those writes skip the touch, so the common
 * case costs no extra write — except the first in a shard that has no watermark yet, which creates
 * it at the entry's bucket (a claimer must not start a shard's watermark later than its entries).
 */
import type { Db } from './db.ts';
import { bucketStart, watermarkKey } from './keys.ts';

/** Nodes' clocks may disagree by this much (NTP keeps them far closer): writes within it touch. */
export const CLOCK_SKEW_MARGIN_MS = 60_000;

// BUCKET is one of DynamoDB's reserved words: attributes are always named through placeholders.
const NAMES_B = { '#b': 'bucket' };
const NAMES_T = { '#t': 'touch' };

export interface Watermark {
  /** Start of the first bucket to scan; null: the shard has never held an entry. */
  bucket: number | null;
  touch: number;
}

export class Watermarks {
  private readonly db: Db;
  private readonly bucketMs: number;
  /** Shards whose watermark exists (they are never deleted): no need to ensure it again. */
  private readonly existing = new Set<number>();

  constructor(db: Db, bucketMs: number) {
    this.db = db;
    this.bucketMs = bucketMs;
  }

  /** Whether an entry in the bucket starting at `bucket`, written at `now`, may lie where a claimer has passed. */
  needsTouch(bucket: number, now: number): boolean {
    return bucket <= bucketStart(now + CLOCK_SKEW_MARGIN_MS, this.bucketMs);
  }

  async read(shard: number): Promise<Watermark> {
    const item = await this.db.get(watermarkKey(shard));
    return { bucket: (item?.bucket as number | undefined) ?? null, touch: (item?.touch as number | undefined) ?? 0 };
  }

  /** After writing a far-future entry in `shard`, in the bucket starting at `bucket`. */
  async ensure(shard: number, bucket: number): Promise<void> {
    if (this.existing.has(shard)) return;
    await this.db.update(watermarkKey(shard), 'SET #b = if_not_exists(#b, :b)', { ':b': bucket }, { names: NAMES_B });
    this.existing.add(shard);
  }

  /** After writing entries in `shard` whose earliest bucket starts at `bucket`: see the module comment. */
  async touch(shard: number, bucket: number): Promise<void> {
    this.existing.add(shard);
    const after = await this.db.update(watermarkKey(shard), 'ADD #t :one', { ':one': 1 }, { names: NAMES_T });
    const current = after?.bucket as number | undefined;
    if (current === undefined || current > bucket) {
      await this.db.update(
        watermarkKey(shard),
        'SET #b = :b',
        { ':b': bucket },
        { condition: 'attribute_not_exists(#b) OR #b > :b', names: NAMES_B },
      );
    }
  }

  /** Moves the watermark to `bucket` if nobody touched it since `seen` was read; false otherwise. */
  async advance(shard: number, seen: Watermark, bucket: number): Promise<boolean> {
    if (seen.bucket === null || bucket <= seen.bucket) return false;
    const done = await this.db.update(
      watermarkKey(shard),
      'SET #b = :to',
      { ':to': bucket, ':from': seen.bucket, ':touch': seen.touch },
      { condition: '#b = :from AND #t = :touch', names: { ...NAMES_B, ...NAMES_T } },
    );
    return done !== null;
  }

  /** The bucket `time` falls in. */
  bucketOf(time: number): number {
    return bucketStart(time, this.bucketMs);
  }
}
