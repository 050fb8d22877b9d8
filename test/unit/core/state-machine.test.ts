import { describe, expect, it } from 'vitest';
import { canTransition, isTerminal } from '../../../src/core/state-machine.ts';
import { TASK_STATES } from '../../../src/core/task.ts';

describe('task state machine', () => {
  it('runs scheduled tasks and ends running ones', () => {
    expect(canTransition('scheduled', 'running')).toBe(true);
    for (const end of ['succeeded', 'failed', 'expired', 'canceled', 'scheduled'] as const) {
      expect(canTransition('running', end)).toBe(true);
    }
  });

  it('cancels only scheduled (or held, unstarted running) tasks', () => {
    expect(canTransition('scheduled', 'canceled')).toBe(true);
    expect(canTransition('succeeded', 'canceled')).toBe(false);
    expect(canTransition('failed', 'canceled')).toBe(false);
  });

  it('retries failed tasks only', () => {
    expect(canTransition('failed', 'scheduled')).toBe(true);
    expect(canTransition('succeeded', 'scheduled')).toBe(false);
    expect(canTransition('canceled', 'scheduled')).toBe(false);
  });

  it('never leaves succeeded, canceled or expired', () => {
    for (const from of ['succeeded', 'canceled', 'expired'] as const) {
      expect(isTerminal(from)).toBe(true);
      for (const to of TASK_STATES) expect(canTransition(from, to)).toBe(false);
    }
  });

  it('never jumps from scheduled straight to an outcome of a run', () => {
    expect(canTransition('scheduled', 'succeeded')).toBe(false);
    expect(canTransition('scheduled', 'failed')).toBe(false);
  });
});
