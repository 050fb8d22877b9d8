import type { StoreCapabilities } from '../store.ts';

/** What the SQLite store offers, on the caller's thread or on its own (one object, shared: frozen). */
export const SQLITE_CAPABILITIES: Readonly<StoreCapabilities> = Object.freeze({
  supportsNotify: false,
  maxBatchSize: 1000,
  // A claim's commit (an fsync) dominates below a few thousand rows: 3,000 doubled the drain
  // rate of a backlog against 1,000 and holds the writer ~60 ms (docs/benchmarks.md).
  claimBatchSize: 3000,
  serverClock: false,
  eventLog: true,
  workerQueues: true,
});
