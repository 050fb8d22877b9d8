/**
 * createPunctual(): the library entry that wires a store, the dispatcher and the targets into
 * one scheduler node, and the TaskService the HTTP API calls.
 *
 *   const p = createPunctual({ store });
 *   p.handle('send-email', async (task, ctx) => { ... });
 *   await p.start();
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { type Clock, systemClock } from './core/clock.ts';
import { PunctualError, validationError } from './core/errors.ts';
import { GroupCommit } from './core/group-commit.ts';
import { type NewTask, queueOf, type Task, type TaskState, type TaskWithAttempts } from './core/task.ts';
import { DEFAULT_LOOKAHEAD_MS, Dispatcher, type DispatcherOptions } from './dispatch/dispatcher.ts';
import { type Logger, silentLogger } from './dispatch/logger.ts';
import { applyWorkerReports, extendLeases, type ReportVerdict, type WorkerReport } from './dispatch/worker-reports.ts';
import type { Relay } from './kafka/event-relay.ts';
import { NodeKafka } from './kafka/node-kafka.ts';
import type { KafkaSettings } from './kafka/settings.ts';
import type { TaskChangeResult, TaskCreateResult, TaskEdit, TaskListParams, TaskStore } from './store/store.ts';
import type { AllowList } from './targets/address-guard.ts';
import { HandlerRegistry } from './targets/handler.ts';
import { HttpWebhookTarget } from './targets/http.ts';
import type { Target, TaskHandler } from './targets/target.ts';
import type { WebhookSecrets } from './targets/webhook-signature.ts';
import type { TaskService } from './task-service.ts';
import { type ClaimRequest, WorkerQueues } from './workers/worker-queues.ts';

export type DispatchSettings = Pick<
  DispatcherOptions,
  'concurrency' | 'lookaheadMs' | 'pollIntervalMs' | 'maxHeld' | 'claimBatchSize' | 'leaseGraceMs' | 'completionDelayMs'
>;

export interface PunctualOptions extends DispatchSettings {
  store: TaskStore;
  clock?: Clock;
  logger?: Logger;
  /** Names this node's leases (default: host, pid and a random suffix). */
  nodeId?: string;
  /** Kafka: targets, the event relay and the results topic (kafka/settings.ts). */
  kafka?: KafkaSettings;
  /** Webhook signing secrets by namespace (targets/webhook-signature.ts). */
  webhookSecrets?: WebhookSecrets;
  /** Private addresses webhooks may reach (default none: targets/address-guard.ts). */
  allowPrivateTargets?: AllowList;
  /**
   * The store's URL, when known (`punctual serve`): the Kafka event relay then runs on a thread
   * of its own with its own connection, off the event loop that fires tasks.
   */
  storeUrl?: string;
}

export class Punctual implements TaskService {
  readonly store: TaskStore;
  readonly dispatcher: Dispatcher;
  readonly nodeId: string;
  private readonly logger: Logger;
  private readonly handlers = new HandlerRegistry();
  private readonly http: HttpWebhookTarget;
  private readonly kafka: NodeKafka | null;
  private readonly ingest: GroupCommit<NewTask, TaskCreateResult>;
  /** Remote workers' queues, when the store keeps them (store capability `workerQueues`). */
  private readonly workerQueues: WorkerQueues | null;
  private readonly reports: GroupCommit<WorkerReport, ReportVerdict>;
  private ready = false;
  private shuttingDown = false;

  constructor(options: PunctualOptions) {
    this.store = options.store;
    this.http = new HttpWebhookTarget({ secrets: options.webhookSecrets, allowPrivate: options.allowPrivateTargets });
    this.logger = options.logger ?? silentLogger;
    this.nodeId = options.nodeId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    const clock = options.clock ?? systemClock;
    const queues = this.store.capabilities.workerQueues
      ? new WorkerQueues({
          clock,
          lookaheadMs: options.lookaheadMs ?? DEFAULT_LOOKAHEAD_MS,
          wake: () => this.dispatcher.wake(),
          release: (tasks) => this.dispatcher.releaseLeases(tasks),
        })
      : null;
    this.workerQueues = queues;
    this.dispatcher = new Dispatcher({
      ...options,
      store: this.store,
      clock,
      logger: this.logger,
      owner: this.nodeId,
      resolveTarget: (task) => this.targetFor(task),
      queueDemand: queues ? () => queues.demand() : undefined,
    });
    if (queues) this.dispatcher.on('claimed', (tasks) => queues.noteClaimed(tasks));
    this.kafka =
      options.kafka && options.kafka.brokers.length > 0
        ? new NodeKafka({
            settings: options.kafka,
            store: this.store,
            storeUrl: options.storeUrl,
            nodeId: this.nodeId,
            logger: this.logger,
            applyReports: (reports) => this.applyWorkerReports(reports),
          })
        : null;
    if (this.kafka) {
      // This node just changed tasks: publish their events without waiting for the relay's poll
      // (other nodes' changes are picked up by that poll).
      const wake = () => this.kafka?.wake();
      for (const change of ['claimed', 'flushed', 'ended', 'released'] as const) this.dispatcher.on(change, wake);
    }
    this.ingest = new GroupCommit((tasks) => this.writeTasks(tasks), this.store.capabilities.maxBatchSize);
    // Reports that arrive together (many workers completing at once) are applied in one store call.
    this.reports = new GroupCommit((reports) => this.applyWorkerReports(reports), 1_000);
  }

  /** The Kafka event relay, when this node has one (it leads only while it holds the relay lease). */
  get eventRelay(): Relay | null {
    return this.kafka?.relay ?? null;
  }

  /** Register the in-process handler for tasks named `name`. */
  handle(name: string, handler: TaskHandler): this {
    this.handlers.register(name, handler);
    return this;
  }

  get handlerRegistry(): HandlerRegistry {
    return this.handlers;
  }

  async start(): Promise<void> {
    this.kafka?.start();
    await this.dispatcher.start();
    this.ready = true;
    this.logger.info({ node: this.nodeId }, 'dispatcher started');
  }

  /** Stop claiming, let running tasks finish within `graceMs`, release the rest. */
  async stop(options: { graceMs?: number } = {}): Promise<void> {
    this.beginShutdown();
    await this.dispatcher.stop(options);
    await this.workerQueues?.stop();
    await this.kafka?.stop();
    this.logger.info({ node: this.nodeId }, 'dispatcher stopped');
  }

  isReady(): boolean {
    return this.ready;
  }

  createTasks(tasks: NewTask[]): Promise<TaskCreateResult[]> {
    return this.guard(() => this.ingest.submit(tasks.map((task) => this.routed(task))));
  }

  /**
   * A task with no target and no handler here goes to the worker queue named after it, so remote
   * workers can serve tasks posted with just a name.
   */
  private routed(task: NewTask): NewTask {
    if (task.target === null && !this.handlers.has(task.name) && this.workerQueues) {
      return { ...task, target: { type: 'worker', queue: task.name } };
    }
    if (task.target?.type === 'worker' && !this.workerQueues) {
      throw validationError('/target', 'unsupported', 'this store does not keep worker queues (DynamoDB)');
    }
    return task;
  }

  /**
   * Shutdown, first step (before the HTTP server closes, which waits for requests in flight):
   * not ready any more, the workers waiting on this node answered, new claims turned away (503)
   * so that they go to another node. Tasks this node holds are released by stop().
   */
  beginShutdown(): void {
    this.shuttingDown = true;
    this.ready = false;
    this.workerQueues?.close();
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  claimFromQueue(queue: string, request: ClaimRequest): Promise<Task[]> {
    if (!this.workerQueues) {
      throw validationError('/queue', 'unsupported', 'this store does not keep worker queues (DynamoDB)');
    }
    return this.workerQueues.claim(queue, request);
  }

  async reportWork(report: WorkerReport): Promise<{ verdict: ReportVerdict; leaseExpiresAt: number | null }> {
    if (report.status === 'heartbeat') {
      const context = { store: this.store, clock: this.dispatcher.clock, leaseGraceMs: this.dispatcher.leaseGraceMs };
      const answer = await this.guard(() => extendLeases([report], context));
      return answer.get(report) ?? { verdict: 'stale', leaseExpiresAt: null };
    }
    const [verdict = 'stale'] = await this.guard(() => this.reports.submit([report]));
    if (verdict !== 'stale') return { verdict, leaseExpiresAt: null };
    // Fenced off: say whether the task exists at all.
    const task = await this.guard(() => this.store.taskGet({ id: report.taskId }));
    return { verdict: task ? 'stale' : 'not_found', leaseExpiresAt: null };
  }

  getTask(id: string): Promise<TaskWithAttempts | null> {
    return this.guard(() => this.store.taskGet({ id }));
  }

  listTasks(params: TaskListParams): Promise<Task[]> {
    return this.guard(() => this.store.taskList(params));
  }

  countByState(): Promise<Record<TaskState, number>> {
    return this.guard(() => this.store.taskCountByState());
  }

  cancelTask(id: string): Promise<TaskChangeResult> {
    return this.guard(() => this.changeHeld(id, (leaseToken) => this.store.taskCancel({ id, leaseToken })));
  }

  updateTask(id: string, changes: TaskEdit): Promise<TaskChangeResult> {
    return this.guardAndWake(() =>
      this.changeHeld(id, (leaseToken) => this.store.taskUpdate({ id, changes, leaseToken })),
    );
  }

  retryTask(id: string): Promise<TaskChangeResult> {
    return this.guardAndWake(() => this.store.taskRetry({ id }));
  }

  runTaskNow(id: string): Promise<TaskChangeResult> {
    return this.guardAndWake(() => this.store.taskRunNow({ id }));
  }

  /**
   * Every store call made for a client: a store failure becomes a 503 problem (the client may
   * retry; nothing was half-written since each store operation is one transaction).
   */
  private async guard<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof PunctualError) throw error;
      this.logger.error({ err: error }, 'task store call failed');
      throw new PunctualError(
        'PUNCTUAL_STORE_UNAVAILABLE',
        'the task store could not complete the request; retry later',
      );
    }
  }

  /** A change may make a task due sooner than the next poll: claim now. */
  private async guardAndWake<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await this.guard(call);
    } finally {
      this.dispatcher.wake();
    }
  }

  /** One transaction for a group of creates; tasks due within the lookahead come back leased to us. */
  private async writeTasks(tasks: NewTask[]): Promise<TaskCreateResult[]> {
    const room = this.dispatcher.room;
    const results = await this.store.taskCreate({
      tasks,
      claim:
        room > 0
          ? {
              lease: { owner: this.nodeId, graceMs: this.dispatcher.leaseGraceMs },
              lookaheadMs: this.dispatcher.lookaheadMs,
              max: room,
            }
          : undefined,
    });
    const claimed = results.flatMap((r) => (r.status === 'created' && r.claimed ? [r.task] : []));
    this.dispatcher.accept(claimed);
    // A task for a queue a worker waits on here: claim it for that worker now.
    const queues = this.workerQueues?.demand() ?? [];
    if (
      queues.length > 0 &&
      results.some((r) => r.status === 'created' && queues.some((q) => q.queue === queueOf(r.task)))
    ) {
      this.dispatcher.wake();
    }
    this.kafka?.wake();
    return results;
  }

  /**
   * Cancel or edit a task. If this node holds it in its timer (claimed ahead, not started), take
   * it out first and act under its lease; put it back if the change did not happen.
   */
  private async changeHeld(
    id: string,
    change: (leaseToken: string | undefined) => Promise<TaskChangeResult>,
  ): Promise<TaskChangeResult> {
    const held = this.dispatcher.takeUnstarted(id);
    let result: TaskChangeResult | undefined;
    try {
      result = await change(held?.leaseToken ?? undefined);
      return result;
    } finally {
      if (held && result?.status !== 'ok') this.dispatcher.putBack(held);
    }
  }

  /** Reports from remote workers (dispatch/worker-reports.ts). */
  async applyWorkerReports(reports: WorkerReport[]): Promise<ReportVerdict[]> {
    const { verdicts, settled } = await applyWorkerReports(reports, {
      store: this.store,
      clock: this.dispatcher.clock,
      leaseGraceMs: this.dispatcher.leaseGraceMs,
    });
    if (settled > 0) this.dispatcher.wake(); // a retry may be due before the next poll
    return verdicts;
  }

  private targetFor(task: Task): Target {
    switch (task.target?.type) {
      case 'http':
        return this.http;
      case 'kafka':
        return this.kafka?.target ?? NO_KAFKA;
      case 'worker':
        return this.workerQueues ?? NO_WORKER_QUEUES;
      default:
        return this.handlers;
    }
  }
}

/** The Kafka target of a node started without brokers: such tasks fail, saying what is missing. */
const NO_KAFKA: Target = {
  async run() {
    return {
      ok: false,
      retryable: false,
      error: 'this node has no Kafka brokers configured (PUNCTUAL_KAFKA_BROKERS) for a Kafka target',
    };
  },
};

/** Only reachable for a worker task written to a store without queues by other means. */
const NO_WORKER_QUEUES: Target = {
  async run() {
    return { ok: false, retryable: false, error: 'this store does not keep worker queues' };
  },
};

export function createPunctual(options: PunctualOptions): Punctual {
  return new Punctual(options);
}
