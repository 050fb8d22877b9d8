import { describe, expect, it } from 'vitest';
import { backoffDelay, retryPause } from '../../../src/core/backoff.ts';
import { DEFAULT_BACKOFF } from '../../../src/core/task.ts';

const noJitter = { ...DEFAULT_BACKOFF, jitter: false };

describe('backoffDelay', () => {
  it('grows exponentially from the base', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelay(noJitter, n))).toEqual([1_000, 2_000, 4_000, 8_000]);
  });

  it('is capped at max_ms', () => {
    expect(backoffDelay({ ...noJitter, max_ms: 5_000 }, 10)).toBe(5_000);
    expect(backoffDelay(noJitter, 1_000)).toBe(DEFAULT_BACKOFF.max_ms);
  });

  it('spreads retries over [0, cap] with full jitter', () => {
    expect(backoffDelay(DEFAULT_BACKOFF, 3, () => 0)).toBe(0);
    expect(backoffDelay(DEFAULT_BACKOFF, 3, () => 0.5)).toBe(2_000);
    expect(backoffDelay(DEFAULT_BACKOFF, 3, () => 0.999)).toBeLessThanOrEqual(4_000);
  });

  it('honours a custom factor', () => {
    expect(backoffDelay({ ...noJitter, base_ms: 100, factor: 3 }, 3)).toBe(900);
  });
});

describe('retryPause', () => {
  it('doubles from the base per failure, up to the cap', () => {
    expect([0, 1, 2, 3, 10, 1_000].map((n) => retryPause(n, 100, 5_000))).toEqual([100, 200, 400, 800, 5_000, 5_000]);
  });
});
