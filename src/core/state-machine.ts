/**
 * The task state machine (drawn in docs/state-machine.md).
 *
 *   scheduled ──claim──▶ running ──▶ succeeded
 *      ▲  │                 │ ├────▶ failed    (attempts exhausted, or a permanent error)
 *      │  │                 │ ├────▶ expired   (its deadline passed before it could start)
 *      │  │                 │ └────▶ canceled  (canceled before its timer fired)
 *      │  │                 └── retry with backoff / lease expired / released ──▶ scheduled
 *      │  ├──cancel──▶ canceled
 *      │  └──deadline passed──▶ expired
 *      └── retry (from failed) / run now / reschedule
 *
 * Every transition writes one event row in the same transaction as the change.
 */
import type { TaskState } from './task.ts';

const TRANSITIONS: Record<TaskState, readonly TaskState[]> = {
  scheduled: ['running', 'canceled', 'expired', 'scheduled'],
  running: ['succeeded', 'failed', 'expired', 'canceled', 'scheduled'],
  failed: ['scheduled'],
  succeeded: [],
  canceled: [],
  expired: [],
};

export const TERMINAL_STATES: readonly TaskState[] = ['succeeded', 'failed', 'canceled', 'expired'];

export function canTransition(from: TaskState, to: TaskState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isTerminal(state: TaskState): boolean {
  return TERMINAL_STATES.includes(state);
}
