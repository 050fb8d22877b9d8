import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.ts';
import { StoreClock } from '../../../src/dispatch/store-clock.ts';

describe('StoreClock', () => {
  it('follows a server clock that runs ahead, erring late by at most the round trip', () => {
    const local = new ManualClock(1_000_000);
    const clock = new StoreClock(local);
    // The server is 5,000 ms ahead; the call took 10 ms and the server read its clock mid-way.
    clock.observe(1_000_000, 1_000_010, 1_005_005);
    expect(clock.offsetMs).toBe(4_995);
    expect(clock.now()).toBeLessThanOrEqual(local.now() + 5_000); // never ahead of the server
  });

  it('follows a server clock that runs behind', () => {
    const local = new ManualClock(1_000_000);
    const clock = new StoreClock(local);
    clock.observe(1_000_000, 1_000_002, 996_001);
    expect(clock.offsetMs).toBe(-4_001);
  });

  it('keeps the tightest of its recent samples', () => {
    const local = new ManualClock(0);
    const clock = new StoreClock(local);
    clock.observe(0, 100, 50); // slow call: bound −50
    clock.observe(200, 201, 201); // fast call: bound 0
    clock.observe(300, 380, 310); // slow again: bound −70
    expect(clock.offsetMs).toBe(0);
  });

  it('forgets samples older than its window, so a corrected server clock is followed', () => {
    const local = new ManualClock(0);
    const clock = new StoreClock(local);
    clock.observe(0, 1, 10_001); // the server was 10 s ahead
    for (let i = 1; i <= 16; i++) clock.observe(i * 100, i * 100 + 1, i * 100 + 1);
    expect(clock.offsetMs).toBe(0);
  });
});
