/**
 * The in-memory timer structure the dispatcher fires tasks from: a binary min-heap keyed by due
 * time (ties broken by insertion order, so equal times fire in the order they were claimed),
 * with ONE `setTimeout` armed for the earliest entry and re-armed as entries come and go.
 *
 * Why a heap and not one timer per task: thousands of claimed tasks would mean thousands of
 * libuv timers; the heap keeps O(log n) inserts and a single timer. Why not a timing wheel: the
 * queue only ever holds the lookahead window (a few seconds), where a heap is as fast and exact.
 *
 * Node clamps delays above 2^31-1 ms to 1 ms (a 30-day timer would fire at once), so the armed
 * delay is capped and simply re-armed when it wakes early.
 */
import type { Clock } from '../core/clock.ts';

export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

interface Entry<T> {
  key: string;
  at: number;
  seq: number;
  value: T;
}

export class TimerQueue<T> {
  private readonly heap: Entry<T>[] = [];
  private readonly byKey = new Map<string, Entry<T>>();
  private readonly clock: Clock;
  private readonly onDue: (values: T[]) => void;
  private timer: NodeJS.Timeout | null = null;
  private armedAt = Number.POSITIVE_INFINITY;
  private seq = 0;
  private stopped = false;

  /** `onDue` receives every entry whose time has come, earliest first. */
  constructor(clock: Clock, onDue: (values: T[]) => void) {
    this.clock = clock;
    this.onDue = onDue;
  }

  get size(): number {
    return this.byKey.size;
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  get(key: string): T | undefined {
    return this.byKey.get(key)?.value;
  }

  push(key: string, at: number, value: T): void {
    if (this.byKey.has(key)) this.remove(key);
    const entry: Entry<T> = { key, at, seq: this.seq++, value };
    this.byKey.set(key, entry);
    this.heap.push(entry);
    this.siftUp(this.heap.length - 1);
    this.arm();
  }

  /** Take an entry out before it fires; returns its value if it was there. */
  remove(key: string): T | undefined {
    const entry = this.byKey.get(key);
    if (!entry) return undefined;
    this.byKey.delete(key);
    const index = this.heap.indexOf(entry);
    const last = this.heap.pop() as Entry<T>;
    if (last !== entry) {
      this.heap[index] = last;
      this.siftDown(index);
      this.siftUp(index);
    }
    this.arm();
    return entry.value;
  }

  /** Remove and return every entry, earliest first (used at shutdown to release leases). */
  drain(): T[] {
    const values: T[] = [];
    while (this.heap.length > 0) values.push(this.popMin().value);
    this.byKey.clear();
    this.disarm();
    return values;
  }

  /** Stop firing; entries stay until drained. */
  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  /** Fire what is due now; called by the armed timer, and usable by tests with a manual clock. */
  fireDue(): void {
    this.disarm();
    const now = this.clock.now();
    const due: T[] = [];
    while (this.heap.length > 0 && (this.heap[0] as Entry<T>).at <= now) {
      const entry = this.popMin();
      this.byKey.delete(entry.key);
      due.push(entry.value);
    }
    this.arm();
    if (due.length > 0) this.onDue(due);
  }

  private arm(): void {
    if (this.stopped) return;
    const first = this.heap[0];
    if (!first) {
      this.disarm();
      return;
    }
    if (this.timer && this.armedAt <= first.at) return;
    this.disarm();
    // setTimeout truncates fractional delays and may wake a hair early: ceil, and fireDue re-arms
    // if nothing is due yet.
    const delay = Math.min(MAX_TIMER_DELAY_MS, Math.max(0, Math.ceil(first.at - this.clock.now())));
    this.armedAt = first.at;
    this.timer = setTimeout(() => this.fireDue(), delay);
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedAt = Number.POSITIVE_INFINITY;
  }

  private popMin(): Entry<T> {
    const top = this.heap[0] as Entry<T>;
    const last = this.heap.pop() as Entry<T>;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private less(a: Entry<T>, b: Entry<T>): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private siftUp(index: number): void {
    const heap = this.heap;
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(heap[i] as Entry<T>, heap[parent] as Entry<T>)) break;
      [heap[i], heap[parent]] = [heap[parent] as Entry<T>, heap[i] as Entry<T>];
      i = parent;
    }
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    const n = heap.length;
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < n && this.less(heap[left] as Entry<T>, heap[smallest] as Entry<T>)) smallest = left;
      if (right < n && this.less(heap[right] as Entry<T>, heap[smallest] as Entry<T>)) smallest = right;
      if (smallest === i) return;
      [heap[i], heap[smallest]] = [heap[smallest] as Entry<T>, heap[i] as Entry<T>];
      i = smallest;
    }
  }
}
