import type { Backoff } from './task.ts';

/**
 * Delay before retry number `attempt` (1 = the first retry, after the first failed attempt).
 * Exponential with "full jitter" (AWS Architecture Blog, "Exponential Backoff and Jitter"):
 * spreading retries uniformly over [0, cap] avoids synchronized retry storms against a target
 * that failed for every task at once.
 */
export function backoffDelay(backoff: Backoff, attempt: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempt - 1);
  const capped = Math.min(backoff.max_ms, backoff.base_ms * backoff.factor ** exponent);
  if (!backoff.jitter) return Math.round(capped);
  return Math.round(random() * capped);
}

/**
 * Pause before the next try of Punctual's own calls after `failures` failures in a row (a store
 * or a broker that is down): doubling from `baseMs`, capped at `maxMs`. No jitter: each loop that
 * uses it is one per node.
 */
export function retryPause(failures: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(0, failures), 30));
}
