/**
 * Wraps a TaskStore to time its hot operations (call to settled promise), and how long at least
 * one call of any kind was in flight ("busy"). With a synchronous driver on the main thread a
 * call's duration is also how long it held the event loop; with a driver on a worker thread or
 * across the network it is the call's latency, queueing included. Either way this is what tells
 * store time from dispatcher time when a target is missed.
 */
import type {
  TaskClaimDueResult,
  TaskCompleteParams,
  TaskCreateParams,
  TaskReleaseParams,
  TaskStore,
} from '../../src/store/store.ts';
import { distribution, round } from './stats.ts';

const TIMED = ['taskCreate', 'taskClaimDue', 'taskComplete', 'taskRelease'] as const;
type TimedOp = (typeof TIMED)[number];

export interface OpStats {
  calls: number;
  rows: number;
  totalMs: number;
  /** Per call. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** totalMs / rows. */
  usPerRow: number;
}

function rowsOf(op: TimedOp, params: unknown, result: unknown): number {
  switch (op) {
    case 'taskCreate':
      return (params as TaskCreateParams).tasks.length;
    case 'taskClaimDue': {
      const r = result as TaskClaimDueResult;
      return r.claimed.length + r.ended.length;
    }
    case 'taskComplete':
      return (params as TaskCompleteParams).outcomes.length;
    case 'taskRelease':
      return (params as TaskReleaseParams).leases.length;
  }
}

export interface TimedStore {
  store: TaskStore;
  stats: () => Partial<Record<TimedOp, OpStats>>;
  /** Milliseconds during which at least one store call (of any kind) was in flight. */
  busyMs: () => number;
}

export function timedStore(store: TaskStore): TimedStore {
  const samples = new Map<TimedOp, { ms: number[]; rows: number }>();
  let inFlight = 0;
  let busySince = 0;
  let busyTotal = 0;
  const enter = () => {
    if (inFlight++ === 0) busySince = performance.now();
  };
  const leave = () => {
    if (--inFlight === 0) busyTotal += performance.now() - busySince;
  };
  const wrapped = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      if (!(TIMED as readonly (string | symbol)[]).includes(prop)) return value.bind(target);
      const op = prop as TimedOp;
      return async (params: unknown) => {
        const started = performance.now();
        enter();
        let result: unknown;
        try {
          result = await value.call(target, params);
        } finally {
          leave();
        }
        const ms = performance.now() - started;
        let s = samples.get(op);
        if (!s) {
          s = { ms: [], rows: 0 };
          samples.set(op, s);
        }
        s.ms.push(ms);
        s.rows += rowsOf(op, params, result);
        return result;
      };
    },
  });
  const stats = () => {
    const out: Partial<Record<TimedOp, OpStats>> = {};
    for (const [op, s] of samples) {
      const d = distribution(s.ms);
      const totalMs = s.ms.reduce((a, b) => a + b, 0);
      out[op] = {
        calls: s.ms.length,
        rows: s.rows,
        totalMs: round(totalMs, 1),
        p50Ms: round(d.p50),
        p99Ms: round(d.p99),
        maxMs: round(d.max),
        usPerRow: s.rows > 0 ? round((totalMs * 1000) / s.rows, 1) : 0,
      };
    }
    return out;
  };
  const busyMs = () => busyTotal + (inFlight > 0 ? performance.now() - busySince : 0);
  return { store: wrapped, stats, busyMs };
}
