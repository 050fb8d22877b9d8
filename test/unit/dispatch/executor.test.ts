import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.ts';
import { Executor } from '../../../src/dispatch/executor.ts';
import { silentLogger } from '../../../src/dispatch/logger.ts';
import type { TaskOutcome } from '../../../src/store/store.ts';
import { makeTask } from '../../helpers/task-factory.ts';

describe('Executor', () => {
  it('settles thousands of tasks that may not start without recursing (no stack overflow)', () => {
    const clock = new ManualClock(1_000_000);
    const tooShort: string[] = [];
    const outcomes: TaskOutcome[] = [];
    let ran = 0;
    const executor = new Executor({
      clock,
      logger: silentLogger,
      concurrency: 10,
      resolveTarget: () => ({
        run: async () => {
          ran += 1;
          return { ok: true };
        },
      }),
      onOutcome: (outcome) => outcomes.push(outcome),
      onLeaseTooShort: (task) => tooShort.push(task.id),
    });
    const lostLease = Array.from({ length: 20_000 }, () =>
      makeTask({ state: 'running', leaseToken: 't', leaseExpiresAt: 1_000_500, timeoutMs: 1_000 }),
    );
    const pastDeadline = Array.from({ length: 20_000 }, () =>
      makeTask({ state: 'running', leaseToken: 't', leaseExpiresAt: 2_000_000, deadlineAt: 999_999 }),
    );
    expect(() => executor.submit([...lostLease, ...pastDeadline])).not.toThrow();
    expect(tooShort).toHaveLength(20_000);
    expect(outcomes.filter((o) => o.kind === 'expired')).toHaveLength(20_000);
    expect(ran).toBe(0);
    expect(executor.load).toBe(0);
  });
});
