/**
 * What the HTTP API (and library users) may do with tasks. Implemented by `Punctual`
 * (src/punctual.ts), which adds what the store alone cannot: create-and-claim into the local
 * dispatcher, and canceling or editing a task this node holds in its timer.
 */
import type { NewTask, Task, TaskState, TaskWithAttempts } from './core/task.ts';
import type { ReportVerdict, WorkerReport } from './dispatch/worker-reports.ts';
import type { TaskChangeResult, TaskCreateResult, TaskEdit, TaskListParams } from './store/store.ts';
import type { ClaimRequest } from './workers/worker-queues.ts';

export interface TaskService {
  /** Persist tasks in one transaction; resolves once they are durable. */
  createTasks(tasks: NewTask[]): Promise<TaskCreateResult[]>;
  getTask(id: string): Promise<TaskWithAttempts | null>;
  listTasks(params: TaskListParams): Promise<Task[]>;
  cancelTask(id: string): Promise<TaskChangeResult>;
  updateTask(id: string, changes: TaskEdit): Promise<TaskChangeResult>;
  retryTask(id: string): Promise<TaskChangeResult>;
  runTaskNow(id: string): Promise<TaskChangeResult>;
  countByState(): Promise<Record<TaskState, number>>;
  /** A remote worker's long-poll: due tasks of `queue`, each leased to the worker (running). */
  claimFromQueue(queue: string, request: ClaimRequest): Promise<Task[]>;
  /** A remote worker's heartbeat, success or failure for a task it claimed, fenced by its lease token. */
  reportWork(report: WorkerReport): Promise<{ verdict: ReportVerdict; leaseExpiresAt: number | null }>;
  /** True once started and until shutdown begins. */
  isReady(): boolean;
  /** Shutdown has begun: answers should tell clients to reconnect elsewhere. */
  isShuttingDown(): boolean;
}
