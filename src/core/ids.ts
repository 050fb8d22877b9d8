import { randomFillSync, randomUUID } from 'node:crypto';

/**
 * UUIDv7 (RFC 9562): 48 bits of epoch milliseconds then random bits, so ids sort by creation time
 * and index inserts stay append-only. A per-process counter in the random bits keeps ids made in
 * the same millisecond increasing.
 */
let lastMs = 0;
let sequence = 0;

// Random bytes drawn 4 KiB at a time: one getrandom call per 256 ids instead of one each
// (the per-id call showed up at ~4% of a batch-ingest profile).
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;
function randomSlice(size: number): Buffer {
  if (poolOffset + size > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  poolOffset += size;
  return pool.subarray(poolOffset - size, poolOffset);
}

export function uuidv7(now: number = Date.now()): string {
  if (now <= lastMs) {
    sequence = (sequence + 1) & 0xfff;
    if (sequence === 0) lastMs += 1; // 4,096 ids in one ms: borrow the next millisecond
    now = lastMs;
  } else {
    lastMs = now;
    sequence = randomSlice(2).readUInt16BE(0) & 0x7ff; // start low so the counter has room to grow
  }
  const bytes = Buffer.from(randomSlice(16));
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = 0x70 | (sequence >> 8);
  bytes[7] = sequence & 0xff;
  bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** An unguessable lease token. */
export function newLeaseToken(): string {
  return randomUUID();
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export function isUuid(value: string): boolean {
  return UUID_PATTERN.test(value);
}
