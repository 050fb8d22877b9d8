import { describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from '../../../src/core/clock.ts';
import { TimerQueue } from '../../../src/dispatch/timer-queue.ts';

describe('TimerQueue', () => {
  it('fires entries earliest first, equal times in insertion order', () => {
    const clock = new ManualClock(1_000);
    const fired: string[] = [];
    const queue = new TimerQueue<string>(clock, (values) => fired.push(...values));
    queue.push('c', 1_300, 'c');
    queue.push('a', 1_100, 'a');
    queue.push('b1', 1_200, 'b1');
    queue.push('b2', 1_200, 'b2');
    clock.set(1_250);
    queue.fireDue();
    expect(fired).toEqual(['a', 'b1', 'b2']);
    expect(queue.size).toBe(1);
    queue.stop();
  });

  it('never fires an entry before its time', () => {
    const clock = new ManualClock(1_000);
    const fired: number[] = [];
    const queue = new TimerQueue<number>(clock, (values) => fired.push(...values));
    for (let i = 0; i < 1_000; i++) queue.push(`k${i}`, 1_000 + ((i * 7919) % 500), 1_000 + ((i * 7919) % 500));
    for (let t = 1_000; t <= 1_500; t += 13) {
      clock.set(t);
      queue.fireDue();
      expect(fired.every((at) => at <= t)).toBe(true);
    }
    clock.set(1_600);
    queue.fireDue();
    expect(fired).toHaveLength(1_000);
    expect(fired).toEqual([...fired].sort((a, b) => a - b));
    queue.stop();
  });

  it('removes and drains entries', () => {
    const clock = new ManualClock(0);
    const queue = new TimerQueue<string>(clock, () => {});
    queue.push('a', 10, 'a');
    queue.push('b', 20, 'b');
    queue.push('c', 30, 'c');
    expect(queue.remove('b')).toBe('b');
    expect(queue.remove('b')).toBeUndefined();
    expect(queue.drain()).toEqual(['a', 'c']);
    expect(queue.size).toBe(0);
  });

  it('fires on a real timer at its time', async () => {
    const at = Date.now() + 30;
    const fired = await new Promise<number>((resolve) => {
      const queue = new TimerQueue<number>(systemClock, () => resolve(Date.now()));
      queue.push('x', at, at);
    });
    expect(fired).toBeGreaterThanOrEqual(at);
  });

  it('does not fire a task 30 days out early (setTimeout overflows past 2^31-1 ms)', async () => {
    const fired: string[] = [];
    const queue = new TimerQueue<string>(systemClock, (values) => fired.push(...values));
    queue.push('far', Date.now() + 30 * 86_400_000, 'far');
    queue.push('near', Date.now() + 20, 'near');
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(fired).toEqual(['near']);
    queue.stop();
  });
});
