/**
 * Group commit. Concurrent calls that arrive in the same turn of the event loop are written in
 * ONE store transaction: with a durable commit (fsync) per transaction, 50 clients each posting
 * one task (or a worker reporting one outcome) cost one fsync instead of 50. Each caller still
 * resolves only after the transaction holding its items has committed (a 2xx means durable),
 * and a failed transaction fails every caller in it (nothing half-written).
 */

interface Pending<I, O> {
  items: I[];
  resolve: (results: O[]) => void;
  reject: (error: unknown) => void;
}

/** `write` returns one result per item, in order. */
export class GroupCommit<I, O> {
  private readonly write: (items: I[]) => Promise<O[]>;
  private readonly maxBatch: number;
  private queue: Pending<I, O>[] = [];
  private scheduled = false;
  private writing = false;

  /** `write` commits one batch of at most `maxBatch` items in one transaction. */
  constructor(write: (items: I[]) => Promise<O[]>, maxBatch: number) {
    this.write = write;
    this.maxBatch = maxBatch;
  }

  submit(items: I[]): Promise<O[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.writing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    const group = this.takeGroup();
    if (group.length === 0) return;
    this.writing = true;
    try {
      const results = await this.write(group.flatMap((p) => p.items));
      let offset = 0;
      for (const pending of group) {
        pending.resolve(results.slice(offset, offset + pending.items.length));
        offset += pending.items.length;
      }
    } catch (error) {
      for (const pending of group) pending.reject(error);
    } finally {
      this.writing = false;
      if (this.queue.length > 0) this.schedule();
    }
  }

  /** Whole requests, oldest first, up to maxBatch items (a single larger request goes alone). */
  private takeGroup(): Pending<I, O>[] {
    let count = 0;
    let take = 0;
    for (const pending of this.queue) {
      if (take > 0 && count + pending.items.length > this.maxBatch) break;
      count += pending.items.length;
      take += 1;
    }
    return this.queue.splice(0, take);
  }
}
