/**
 * Group commit for task creation. Concurrent create calls that arrive in the same turn of the
 * event loop are written in ONE store transaction: with a durable commit (fsync) per
 * transaction, 50 clients each posting one task cost one fsync instead of 50. Each caller still
 * resolves only after the transaction holding its tasks has committed (a 2xx means durable),
 * and a failed transaction fails every caller in it (nothing half-written).
 */
import type { NewTask } from '../core/task.ts';
import type { TaskCreateResult } from '../store/store.ts';

interface Pending {
  tasks: NewTask[];
  resolve: (results: TaskCreateResult[]) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit {
  private readonly write: (tasks: NewTask[]) => Promise<TaskCreateResult[]>;
  private readonly maxBatch: number;
  private queue: Pending[] = [];
  private scheduled = false;
  private writing = false;

  /** `write` commits one batch of at most `maxBatch` tasks in one transaction. */
  constructor(write: (tasks: NewTask[]) => Promise<TaskCreateResult[]>, maxBatch: number) {
    this.write = write;
    this.maxBatch = maxBatch;
  }

  submit(tasks: NewTask[]): Promise<TaskCreateResult[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ tasks, resolve, reject });
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
      const results = await this.write(group.flatMap((p) => p.tasks));
      let offset = 0;
      for (const pending of group) {
        pending.resolve(results.slice(offset, offset + pending.tasks.length));
        offset += pending.tasks.length;
      }
    } catch (error) {
      for (const pending of group) pending.reject(error);
    } finally {
      this.writing = false;
      if (this.queue.length > 0) this.schedule();
    }
  }

  /** Whole requests, oldest first, up to maxBatch tasks (a single larger request goes alone). */
  private takeGroup(): Pending[] {
    let count = 0;
    let take = 0;
    for (const pending of this.queue) {
      if (take > 0 && count + pending.tasks.length > this.maxBatch) break;
      count += pending.tasks.length;
      take += 1;
    }
    return this.queue.splice(0, take);
  }
}
