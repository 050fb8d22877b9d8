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
import { PunctualError } from './core/errors.ts';
import type { NewTask, Task, TaskState, TaskWithAttempts } from './core/task.ts';
import { Dispatcher, type DispatcherOptions } from './dispatch/dispatcher.ts';
import { type Logger, silentLogger } from './dispatch/logger.ts';
import { applyWorkerReports } from './dispatch/worker-reports.ts';
import { GroupCommit } from './ingest/group-commit.ts';
import type { Relay } from './kafka/event-relay.ts';
import { NodeKafka } from './kafka/node-kafka.ts';
import type { ReportVerdict, WorkerReport } from './kafka/results-consumer.ts';
import type { KafkaSettings } from './kafka/settings.ts';
import type { TaskChangeResult, TaskCreateResult, TaskEdit, TaskListParams, TaskStore } from './store/store.ts';
import type { AllowList } from './targets/address-guard.ts';
import { HandlerRegistry } from './targets/handler.ts';
import { HttpWebhookTarget } from './targets/http.ts';
import type { Target, TaskHandler } from './targets/target.ts';
import type { WebhookSecrets } from './targets/webhook-signature.ts';
import type { TaskService } from './task-service.ts';

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
  private readonly ingest: GroupCommit;
  private ready = false;

  constructor(options: PunctualOptions) {
    this.store = options.store;
    this.http = new HttpWebhookTarget({ secrets: options.webhookSecrets, allowPrivate: options.allowPrivateTargets });
    this.logger = options.logger ?? silentLogger;
    this.nodeId = options.nodeId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.dispatcher = new Dispatcher({
      ...options,
      store: this.store,
      clock: options.clock ?? systemClock,
      logger: this.logger,
      owner: this.nodeId,
      resolveTarget: (task) => this.targetFor(task),
    });
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
    this.ready = false;
    await this.dispatcher.stop(options);
    await this.kafka?.stop();
    this.logger.info({ node: this.nodeId }, 'dispatcher stopped');
  }

  isReady(): boolean {
    return this.ready;
  }

  createTasks(tasks: NewTask[]): Promise<TaskCreateResult[]> {
    return this.guard(() => this.ingest.submit(tasks));
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

export function createPunctual(options: PunctualOptions): Punctual {
  return new Punctual(options);
}
