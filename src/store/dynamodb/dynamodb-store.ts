import type { Task, TaskEvent, TaskEventType, TaskState, TaskWithAttempts } from '../../core/task.ts';
import { TASK_STATES } from '../../core/task.ts';
import { type AttemptRow, rowToAttempt, rowToTask, type TaskRowOf, toJson } from '../rows.ts';
import type {
  EventListParams,
  LeaseTerms,
  OutboxCursor,
  StoreCapabilities,
  TaskCancelParams,
  TaskChangeResult,
  TaskClaimDueParams,
  TaskClaimDueResult,
  TaskCompleteParams,
  TaskCompleteResult,
  TaskCreateParams,
  TaskCreateResult,
  TaskHeartbeatParams,
  TaskHeartbeatResult,
  TaskIdParams,
  TaskListParams,
  TaskOutcome,
  TaskReleaseParams,
  TaskStore,
  TaskUpdateParams,
} from '../store.ts';
import {
  type ChangeRule,
  cancelRule,
  type EventData,
  NO_LEASE,
  retryRule,
  runNowRule,
  updateRule,
} from '../task-changes.ts';
import { type ClaimDecision, createdTask, decideClaim, leaseExpiredData, outcomeEffect } from '../transitions.ts';
import { type DynamoConfig, parseDynamoUrl } from './config.ts';
import { Db, type Item, inParallel, makeClient, PARALLEL_REQUESTS } from './db.ts';
import {
  bucketPk,
  entryKey,
  entryTaskId,
  entryTime,
  idempotencyKey,
  type Key,
  listSk,
  padTime,
  shardOf,
  TASK_SK,
  taskKey,
} from './keys.ts';
import { ShardLeases } from './shard-leases.ts';
import { createTable, LIST_INDEX, tableProblem } from './table.ts';
import { type Watermark, Watermarks } from './watermarks.ts';

/** An event as kept in its task's item (written with the change, in the same conditional put). */
interface StoredEvent {
  type: TaskEventType;
  attempt: number;
  at: number;
  data: string | null;
}

type TaskItem = TaskRowOf<string> &
  Key & {
    v: number;
    entry_pk: string | null;
    entry_sk: string | null;
    attempt_log: AttemptRow[];
    events: StoredEvent[];
    list_shard: number;
    list_sk: string;
  };

/** A task as read, with what its next write must carry along. */
interface Current {
  task: Task;
  item: TaskItem;
}

/** What one write does besides storing the task's new fields. */
interface Effects {
  /** `attempt` defaults to the task's attempt count after the change. */
  events: { type: TaskEventType; data: EventData; attempt?: number }[];
  /** Close the open attempt (outcome null) like this. */
  closeAttempt?: Partial<AttemptRow> & Pick<AttemptRow, 'outcome'>;
  /** Open a new attempt (the task was claimed). */
  openAttempt?: boolean;
}

/** A schedule entry found by a claim. */
interface Candidate {
  time: number;
  id: string;
  key: Key;
  writtenAt: number;
}

/** An entry left behind by a writer that crashed may still be in flight for this long: then it is stale. */
const ORPHAN_ENTRY_AGE_MS = 5 * 60_000;
/** Buckets one claim scans per shard at most: a watermark far behind catches up over several claims. */
const MAX_BUCKETS_PER_CLAIM = 240;
const MAX_CHANGE_RUNS = 10;
const decode = (value: string) => JSON.parse(value) as unknown;

export interface DynamoStoreOptions {
  url: string;
  /** Create the table when it is missing (`punctual migrate`); otherwise a missing table is an error. */
  create?: boolean;
}

const NO_EVENT_LOG = 'The dynamodb store keeps events per task and has no table-wide event log (eventList, outbox)';

export class DynamoStore implements TaskStore {
  readonly capabilities: StoreCapabilities = {
    supportsNotify: false,
    maxBatchSize: 1000,
    claimBatchSize: 1000,
    serverClock: false,
    eventLog: false,
    workerQueues: false,
  };
  readonly config: DynamoConfig;
  private readonly db: Db;
  private readonly watermarks: Watermarks;
  private readonly shardLeases: ShardLeases;
  private closed = false;

  private constructor(config: DynamoConfig) {
    this.config = config;
    this.db = new Db(makeClient(config), config.table);
    this.watermarks = new Watermarks(this.db, config.bucketMs);
    this.shardLeases = new ShardLeases(this.db, config.shards);
  }

  static async open(options: DynamoStoreOptions): Promise<DynamoStore> {
    const store = new DynamoStore(parseDynamoUrl(options.url));
    try {
      if (options.create) await store.migrate();
      const problem = await tableProblem(store.db.client, store.config.table);
      if (problem !== null) {
        throw new Error(`${problem}: create it with \`punctual migrate --store <the same dynamodb:// URL>\``);
      }
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  async timeNow(): Promise<number> {
    return Date.now();
  }

  async migrate(): Promise<void> {
    await createTable(this.db.client, this.config.table);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.shardLeases.releaseAll().catch(() => {});
    this.db.client.destroy();
  }

  // ---- items ----

  private shard(id: string): number {
    return shardOf(id, this.config.shards);
  }

  /** Where a task in this state must have its schedule entry; null when it is finished. */
  private entryFor(task: Task, now: number): Key | null {
    const time = task.state === 'scheduled' ? task.scheduledAt : task.state === 'running' ? task.leaseExpiresAt : null;
    if (time === null) return null;
    return entryKey(time, task.id, this.shard(task.id), this.config.bucketMs, now);
  }

  private toItem(task: Task, previous: TaskItem | null, entry: Key | null, effects: Effects, now: number): TaskItem {
    const attemptLog = [...(previous?.attempt_log ?? [])];
    if (effects.closeAttempt) {
      const open = attemptLog.findIndex((a) => a.outcome === null);
      if (open >= 0) {
        const attempt = attemptLog[open] as AttemptRow;
        attemptLog[open] = {
          ...attempt,
          ended_at: effects.closeAttempt.ended_at ?? now,
          started_at: effects.closeAttempt.started_at ?? attempt.started_at,
          outcome: effects.closeAttempt.outcome,
          error: effects.closeAttempt.error ?? null,
        };
      }
    }
    if (effects.openAttempt) {
      attemptLog.push({
        task_id: task.id,
        attempt: task.attempts,
        lease_owner: task.leaseOwner as string,
        claimed_at: now,
        started_at: null,
        ended_at: null,
        outcome: null,
        error: null,
      });
    }
    const events = [...(previous?.events ?? [])];
    for (const event of effects.events) {
      events.push({ type: event.type, attempt: event.attempt ?? task.attempts, at: now, data: toJson(event.data) });
    }
    return {
      ...taskKey(task.id),
      id: task.id,
      namespace: task.namespace,
      name: task.name,
      description: task.description,
      payload: toJson(task.payload),
      target: toJson(task.target),
      state: task.state,
      scheduled_at: task.scheduledAt,
      deadline_at: task.deadlineAt,
      max_attempts: task.maxAttempts,
      timeout_ms: task.timeoutMs,
      backoff: JSON.stringify(task.backoff),
      idempotency_key: task.idempotencyKey,
      request_hash: task.requestHash,
      attempts: task.attempts,
      lease_owner: task.leaseOwner,
      lease_token: task.leaseToken,
      lease_expires_at: task.leaseExpiresAt,
      last_error: task.lastError,
      created_at: task.createdAt,
      updated_at: task.updatedAt,
      finished_at: task.finishedAt,
      v: (previous?.v ?? 0) + 1,
      entry_pk: entry?.pk ?? null,
      entry_sk: entry?.sk ?? null,
      attempt_log: attemptLog,
      events,
      list_shard: this.shard(task.id),
      list_sk: listSk(task.scheduledAt, task.id),
    };
  }

  private current(item: Item): Current {
    const row = item as unknown as TaskItem;
    return { task: rowToTask(row, decode), item: row };
  }

  private async read(id: string): Promise<Current | null> {
    const item = await this.db.get(taskKey(id));
    return item ? this.current(item) : null;
  }

  private async readMany(ids: string[]): Promise<Map<string, Current>> {
    const unique = [...new Set(ids)];
    const items = await this.db.batchGet(unique.map(taskKey));
    return new Map(items.map((item) => [item.id as string, this.current(item)]));
  }

  /** Puts entries, then touches each shard's watermark once for the earliest near bucket among them. */
  private async putEntries(entries: { key: Key; id: string }[], now: number): Promise<void> {
    if (entries.length === 0) return;
    await this.db.batchWrite(entries.map(({ key, id }) => ({ ...key, id, written_at: now })));
    // Per shard, the earliest bucket written: near ones touch the watermark, far ones ensure it exists.
    const near = new Map<number, number>();
    const far = new Map<number, number>();
    for (const { key, id } of entries) {
      const bucket = Date.parse(key.pk.split('#')[1] as string);
      const shard = this.shard(id);
      const into = this.watermarks.needsTouch(bucket, now) ? near : far;
      if (bucket < (into.get(shard) ?? Number.POSITIVE_INFINITY)) into.set(shard, bucket);
    }
    await inParallel([...near], PARALLEL_REQUESTS, ([shard, bucket]) => this.watermarks.touch(shard, bucket));
    await inParallel(
      [...far].filter(([shard]) => !near.has(shard)),
      PARALLEL_REQUESTS,
      ([shard, bucket]) => this.watermarks.ensure(shard, bucket),
    );
  }

  /**
   * Writes each `next` over its `current` with the entry rules of the module comment, entries and
   * their deletions batched across the writes. False where another writer changed the task since
   * it was read: nothing of that write remains.
   */
  private async commitMany(
    writes: { current: Current; next: Task; effects: Effects }[],
    now: number,
  ): Promise<boolean[]> {
    const plans = writes.map(({ current, next, effects }) => {
      const previous =
        current.item.entry_pk !== null ? { pk: current.item.entry_pk, sk: current.item.entry_sk as string } : null;
      const entry = this.entryFor(next, now);
      const moved = entry !== null && (entry.pk !== previous?.pk || entry.sk !== previous?.sk);
      return { previous, entry, moved, item: this.toItem(next, current.item, entry, effects, now), v: current.item.v };
    });
    await this.putEntries(
      plans.filter((p) => p.moved).map((p) => ({ key: p.entry as Key, id: p.item.id })),
      now,
    );
    const written = await inParallel(plans, PARALLEL_REQUESTS, (p) => this.db.put(p.item, 'v = :v', { ':v': p.v }));
    const leftovers: Key[] = [];
    plans.forEach((p, i) => {
      if (!written[i]) {
        if (p.moved) leftovers.push(p.entry as Key); // the write lost a race: its new entry goes
      } else if (p.previous && (p.moved || p.entry === null)) {
        leftovers.push(p.previous); // the entry it replaced
      }
    });
    // Best effort: an entry left behind is stale, and claimers clear stale entries.
    await this.db.batchWrite([], leftovers).catch(() => {});
    return written;
  }

  private async commit(current: Current, next: Task, effects: Effects, now: number): Promise<boolean> {
    const [written] = await this.commitMany([{ current, next, effects }], now);
    return written === true;
  }

  // ---- create ----

  async taskCreate({ tasks, now = Date.now(), claim }: TaskCreateParams): Promise<TaskCreateResult[]> {
    if (tasks.length > this.capabilities.maxBatchSize) {
      throw new RangeError(`A batch holds at most ${this.capabilities.maxBatchSize} tasks, got ${tasks.length}`);
    }
    const results: (TaskCreateResult | undefined)[] = new Array(tasks.length);
    // Idempotency keys first: the key's item names the task id before the task exists, so a create
    // that crashed half-way is finished by the next request with the same key.
    const firstOfKey = new Map<string, number>();
    const toCreate: { index: number; id: string }[] = [];
    await inParallel(
      tasks.map((input, index) => ({ input, index })),
      PARALLEL_REQUESTS,
      async ({ input, index }) => {
        if (input.idempotencyKey === null) {
          toCreate.push({ index, id: input.id });
          return;
        }
        const keyText = JSON.stringify([input.namespace, input.idempotencyKey]);
        if (firstOfKey.has(keyText)) return; // answered against the first one below
        firstOfKey.set(keyText, index);
        const key = idempotencyKey(input.namespace, input.idempotencyKey);
        const owner = { ...key, task_id: input.id, request_hash: input.requestHash };
        if (await this.db.put(owner, 'attribute_not_exists(pk)')) {
          toCreate.push({ index, id: input.id });
          return;
        }
        const holder = await this.db.get(key);
        const taskId = holder?.task_id as string;
        const existing = await this.read(taskId);
        if (existing) {
          const same = existing.task.requestHash === input.requestHash;
          results[index] = { status: same ? 'existing' : 'conflict', task: existing.task };
        } else if (holder?.request_hash === input.requestHash) {
          toCreate.push({ index, id: taskId }); // the first create crashed before writing its task
        } else {
          throw new Error(`idempotency key ${input.idempotencyKey} is being used by a create still in progress`);
        }
      },
    );
    toCreate.sort((a, b) => a.index - b.index);

    let claimed = 0;
    const fresh = toCreate.map(({ index, id }) => {
      const input = { ...(tasks[index] as (typeof tasks)[number]), id };
      const leased = claim !== undefined && input.scheduledAt < now + claim.lookaheadMs && claimed < claim.max;
      if (leased) claimed++;
      return { index, task: createdTask(input, now, leased ? claim.lease : null), claimed: leased };
    });
    const items = fresh.map(({ task, claimed: leased }) => {
      const entry = this.entryFor(task, now) as Key;
      const events: Effects['events'] = [{ type: 'created', data: null, attempt: 0 }];
      if (leased) events.push({ type: 'claimed', data: { lease_owner: task.leaseOwner } });
      return { item: this.toItem(task, null, entry, { events, openAttempt: leased }, now), entry };
    });
    await this.putEntries(
      items.map(({ entry, item }) => ({ key: entry, id: item.id })),
      now,
    );
    await this.db.batchWrite(items.map(({ item }) => item));
    for (const { index, task, claimed: leased } of fresh) results[index] = { status: 'created', task, claimed: leased };

    // Repeats of a key inside the batch are answered against its first task.
    return tasks.map((input, index) => {
      const result = results[index];
      if (result) return result;
      const first = results[firstOfKey.get(JSON.stringify([input.namespace, input.idempotencyKey])) ?? -1];
      if (!first) throw new Error(`task ${index + 1} of the batch was left unanswered`);
      return { status: first.task.requestHash === input.requestHash ? 'existing' : 'conflict', task: first.task };
    });
  }

  // ---- reads ----

  async taskGet({ id }: { id: string }): Promise<TaskWithAttempts | null> {
    const found = await this.read(id);
    if (!found) return null;
    return { ...found.task, attemptLog: found.item.attempt_log.map(rowToAttempt) };
  }

  /**
   * The list index has one partition per shard: each is read in (scheduledAt, id) order from the
   * cursor, filtered, and the pages are merged.
   */
  async taskList(params: TaskListParams): Promise<Task[]> {
    if (params.limit <= 0) return [];
    // Key values may not be empty strings: '0' sorts before every padded time.
    const low = [
      '0',
      params.after ? listSk(params.after.scheduledAt, params.after.id) : '',
      params.scheduledAfter !== undefined ? padTime(params.scheduledAfter) : '',
    ]
      .sort()
      .at(-1) as string;
    const high = params.scheduledBefore !== undefined ? `${padTime(params.scheduledBefore)}#\uffff` : '\uffff';
    const filters: string[] = [];
    const values: Record<string, unknown> = { ':low': low, ':high': high };
    const names: Record<string, string> = {};
    if (params.namespace !== undefined) {
      filters.push('#namespace = :namespace');
      values[':namespace'] = params.namespace;
      names['#namespace'] = 'namespace';
    }
    if (params.state !== undefined) {
      filters.push('#state = :state');
      values[':state'] = params.state;
      names['#state'] = 'state';
    }
    if (params.name !== undefined) {
      filters.push('#name = :name');
      values[':name'] = params.name;
      names['#name'] = 'name';
    }
    const afterKey = params.after ? listSk(params.after.scheduledAt, params.after.id) : null;
    const shards = Array.from({ length: this.config.shards }, (_, shard) => shard);
    const perShard = await inParallel(shards, PARALLEL_REQUESTS, async (shard) => {
      const found: TaskItem[] = [];
      let start: Record<string, unknown> | undefined;
      do {
        const page = await this.db.query({
          IndexName: LIST_INDEX,
          KeyConditionExpression: 'list_shard = :shard AND list_sk BETWEEN :low AND :high',
          FilterExpression: filters.length > 0 ? filters.join(' AND ') : undefined,
          ExpressionAttributeNames: Object.keys(names).length > 0 ? names : undefined,
          values: { ...values, ':shard': shard },
          ExclusiveStartKey: start as never,
        });
        for (const item of page.items as TaskItem[]) if (item.list_sk !== afterKey) found.push(item);
        start = page.next;
      } while (start && found.length < params.limit);
      return found;
    });
    return perShard
      .flat()
      .sort((a, b) => (a.list_sk < b.list_sk ? -1 : a.list_sk > b.list_sk ? 1 : 0))
      .slice(0, params.limit)
      .map((item) => rowToTask(item, decode));
  }

  async taskCountByState(): Promise<Record<TaskState, number>> {
    const counts = Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as Record<TaskState, number>;
    const items = await this.db.scanAll({
      FilterExpression: 'sk = :task',
      ProjectionExpression: '#state',
      ExpressionAttributeNames: { '#state': 'state' },
      values: { ':task': TASK_SK },
    });
    for (const item of items) counts[item.state as TaskState]++;
    return counts;
  }

  // ---- claims ----

  /**
   * Scans the shards this node holds (all of them without shard leases) from their watermarks to
   * the lookahead, claims the due tasks oldest first by conditional writes, and moves the
   * watermarks past buckets found empty.
   */
  async taskClaimDue({ lease, now = Date.now(), lookaheadMs, limit }: TaskClaimDueParams): Promise<TaskClaimDueResult> {
    const result: TaskClaimDueResult = { now, claimed: [], ended: [] };
    if (limit <= 0) return result;
    const until = now + lookaheadMs;
    const shards = this.config.shardLeases
      ? await this.shardLeases.owned(lease.owner, now)
      : Array.from({ length: this.config.shards }, (_, shard) => shard);
    // Twice the limit: candidates other claimers win are skipped, as SKIP LOCKED would.
    const wanted = limit * 2;
    const found = await inParallel(shards, PARALLEL_REQUESTS, (shard) => this.scanShard(shard, now, until, wanted));
    const candidates = found
      .flat()
      .sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .slice(0, wanted);
    if (candidates.length === 0) return result;

    const tasks = await this.readMany(candidates.map((c) => c.id));
    // In waves, oldest first: each takes as many candidates as claims are still missing.
    for (let next = 0; next < candidates.length; ) {
      const missing = limit - result.claimed.length - result.ended.length;
      if (missing <= 0) break;
      const wave = candidates.slice(next, next + missing);
      next += wave.length;
      for (const decision of await this.claimWave(wave, tasks, lease, now, until)) {
        if (decision.verdict === 'claimed') result.claimed.push(decision.task);
        else result.ended.push(decision.task);
      }
    }
    const order = (a: Task, b: Task) => a.scheduledAt - b.scheduledAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    result.claimed.sort(order);
    result.ended.sort(order);
    return result;
  }

  /** Entries due before `until` in one shard, from its watermark on; advances the watermark. */
  private async scanShard(shard: number, now: number, until: number, limit: number) {
    const mark: Watermark = await this.watermarks.read(shard);
    const found: Candidate[] = [];
    if (mark.bucket === null) return found;
    const last = this.watermarks.bucketOf(until);
    let firstNonEmpty: number | null = null;
    let bucket = mark.bucket;
    for (let scanned = 0; bucket <= last && scanned < MAX_BUCKETS_PER_CLAIM && found.length < limit; scanned++) {
      const { items } = await this.db.query({
        KeyConditionExpression: 'pk = :pk AND sk < :until',
        values: { ':pk': bucketPk(bucket, shard), ':until': padTime(until) },
        Limit: limit - found.length,
      });
      if (items.length > 0) firstNonEmpty ??= bucket;
      for (const item of items) {
        const sk = item.sk as string;
        found.push({
          time: entryTime(sk),
          id: entryTaskId(sk),
          key: { pk: item.pk as string, sk },
          writtenAt: item.written_at as number,
        });
      }
      bucket += this.config.bucketMs;
    }
    // Past empty buckets only, and never past the current one (writers may still land in it).
    const to = Math.min(firstNonEmpty ?? bucket, this.watermarks.bucketOf(now));
    if (to > mark.bucket) await this.watermarks.advance(shard, mark, to);
    return found;
  }

  /**
   * What claiming the task behind `candidate` writes, or undefined when there is nothing to claim:
   * the entry is stale (then removed, once old enough that its writer cannot still be between
   * putting it and writing the task), or the task is not due.
   */
  private async planClaim(
    candidate: Candidate,
    current: Current | null,
    lease: LeaseTerms,
    now: number,
    until: number,
  ) {
    const pointsHere = current?.item.entry_pk === candidate.key.pk && current?.item.entry_sk === candidate.key.sk;
    if (!current || !pointsHere) {
      if (now - candidate.writtenAt > ORPHAN_ENTRY_AGE_MS) await this.db.delete(candidate.key).catch(() => false);
      return undefined;
    }
    const task = current.task;
    const due =
      (task.state === 'scheduled' && task.scheduledAt < until) ||
      (task.state === 'running' && (task.leaseExpiresAt ?? Number.POSITIVE_INFINITY) <= now);
    if (!due) return undefined;
    const crashed = task.state === 'running';
    const decision = decideClaim(task, now, lease);
    const events: Effects['events'] = [];
    // The lapsed lease belongs to the attempt before this claim.
    if (crashed) events.push({ type: 'lease_expired', data: leaseExpiredData(task), attempt: task.attempts });
    events.push({ type: decision.verdict, data: decision.data });
    const effects: Effects = {
      events,
      closeAttempt: crashed ? { outcome: 'lease_expired', ended_at: now } : undefined,
      openAttempt: decision.verdict === 'claimed',
    };
    return { decision, write: { current, next: decision.task, effects } };
  }

  /** Claims a wave of candidates with batched writes; a write that lost a race is decided again on a fresh read. */
  private async claimWave(
    wave: Candidate[],
    tasks: Map<string, Current>,
    lease: LeaseTerms,
    now: number,
    until: number,
  ): Promise<ClaimDecision[]> {
    const plans = (
      await inParallel(wave, PARALLEL_REQUESTS, async (candidate) => ({
        candidate,
        plan: await this.planClaim(candidate, tasks.get(candidate.id) ?? null, lease, now, until),
      }))
    ).filter((p) => p.plan !== undefined);
    const written = await this.commitMany(
      plans.map((p) => p.plan?.write as NonNullable<typeof p.plan>['write']),
      now,
    );
    const decisions: ClaimDecision[] = [];
    const lost: Candidate[] = [];
    plans.forEach((p, i) => {
      if (written[i]) decisions.push(p.plan?.decision as ClaimDecision);
      else lost.push(p.candidate);
    });
    await inParallel(lost, PARALLEL_REQUESTS, async (candidate) => {
      for (let run = 1; run <= MAX_CHANGE_RUNS; run++) {
        const plan = await this.planClaim(candidate, await this.read(candidate.id), lease, now, until);
        if (!plan) return;
        if (await this.commit(plan.write.current, plan.write.next, plan.write.effects, now)) {
          decisions.push(plan.decision);
          return;
        }
      }
    });
    return decisions;
  }

  // ---- outcomes ----

  async taskComplete({ outcomes, now = Date.now() }: TaskCompleteParams): Promise<TaskCompleteResult[]> {
    return this.applyFenced(outcomes, now, (outcome, task) => {
      const effect = outcomeEffect(outcome as TaskOutcome, now);
      const next: Task = {
        ...task,
        ...NO_LEASE,
        state: effect.state,
        scheduledAt: effect.scheduledAt ?? task.scheduledAt,
        lastError: effect.error ?? task.lastError,
        finishedAt: effect.finishedAt,
        updatedAt: now,
      };
      const o = outcome as TaskOutcome;
      return {
        next,
        effects: {
          events: [{ type: effect.event, data: effect.data }],
          closeAttempt: {
            outcome: o.kind,
            started_at: o.startedAt,
            ended_at: o.endedAt,
            error: effect.error,
          },
        },
      };
    });
  }

  async taskRelease({ leases, now = Date.now() }: TaskReleaseParams): Promise<TaskCompleteResult[]> {
    return this.applyFenced(leases, now, (_lease, task) => ({
      next: { ...task, ...NO_LEASE, state: 'scheduled', attempts: task.attempts - 1, updatedAt: now },
      effects: { events: [{ type: 'released', data: null }], closeAttempt: { outcome: 'released', ended_at: now } },
    }));
  }

  async taskHeartbeat({ leases, now = Date.now() }: TaskHeartbeatParams): Promise<TaskHeartbeatResult[]> {
    const expiries = new Map<string, number>();
    const results = await this.applyFenced(leases, now, (lease, task) => {
      // The schedule entry follows the lease end (a claim finds the task again only once it lapses).
      const leaseExpiresAt = Math.max(task.leaseExpiresAt ?? 0, now + lease.extendMs);
      expiries.set(task.id, leaseExpiresAt);
      return { next: { ...task, leaseExpiresAt, updatedAt: now }, effects: { events: [] } };
    });
    return results.map(({ id, applied }) => ({
      id,
      applied,
      leaseExpiresAt: applied ? (expiries.get(id) ?? null) : null,
    }));
  }

  /**
   * Applies each request to its task while the caller's lease token is the task's current one. The
   * same task may appear twice: the first request holding the lease applies, and fences the rest.
   * One batched pass; a write that lost a race (the task changed after it was read) is tried again.
   */
  private async applyFenced<R extends { id: string; leaseToken: string }>(
    requests: R[],
    now: number,
    apply: (request: R, task: Task) => { next: Task; effects: Effects },
  ): Promise<TaskCompleteResult[]> {
    if (requests.length === 0) return [];
    const applied = new Array<boolean>(requests.length).fill(false);
    const holder = (current: Current) =>
      requests.findIndex(
        (r) => current.task.id === r.id && current.task.state === 'running' && current.task.leaseToken === r.leaseToken,
      );
    let pending = [...(await this.readMany(requests.map((r) => r.id))).values()];
    for (let run = 1; run <= MAX_CHANGE_RUNS && pending.length > 0; run++) {
      const writes = pending
        .map((current) => ({ current, position: holder(current) }))
        .filter(({ position }) => position >= 0)
        .map(({ current, position }) => ({ current, position, ...apply(requests[position] as R, current.task) }));
      const written = await this.commitMany(writes, now);
      const raced: string[] = [];
      writes.forEach((w, i) => {
        if (written[i]) applied[w.position] = true;
        else raced.push(w.current.task.id);
      });
      pending = raced.length > 0 ? [...(await this.readMany(raced)).values()] : [];
    }
    return requests.map((r, i) => ({ id: r.id, applied: applied[i] as boolean }));
  }

  // ---- edits ----

  private async change(id: string, now: number, rule: ChangeRule): Promise<TaskChangeResult> {
    for (let run = 1; run <= MAX_CHANGE_RUNS; run++) {
      const current = await this.read(id);
      if (!current) return { status: 'not_found' };
      const change = rule(current.task, now);
      if (!change) return { status: 'invalid_state', task: current.task };
      const next = { ...change.task, updatedAt: now };
      const effects: Effects = {
        events: [{ type: change.event, data: change.data }],
        closeAttempt: change.attemptOutcome ? { outcome: change.attemptOutcome, ended_at: now } : undefined,
      };
      if (await this.commit(current, next, effects, now)) return { status: 'ok', task: next };
    }
    throw new Error(`task ${id} kept changing under an edit; gave up after ${MAX_CHANGE_RUNS} tries`);
  }

  taskCancel({ id, now = Date.now(), leaseToken }: TaskCancelParams): Promise<TaskChangeResult> {
    return this.change(id, now, cancelRule(leaseToken));
  }

  taskUpdate({ id, now = Date.now(), changes, leaseToken }: TaskUpdateParams): Promise<TaskChangeResult> {
    return this.change(id, now, updateRule(changes, leaseToken));
  }

  taskRetry({ id, now = Date.now() }: TaskIdParams): Promise<TaskChangeResult> {
    return this.change(id, now, retryRule);
  }

  taskRunNow({ id, now = Date.now() }: TaskIdParams): Promise<TaskChangeResult> {
    return this.change(id, now, runNowRule);
  }

  /** The events kept in the task's item; `seq` counts within the task. */
  async taskEvents({ id }: { id: string }): Promise<TaskEvent[]> {
    const found = await this.read(id);
    if (!found) return [];
    const { task, item } = found;
    return item.events.map((event, index) => ({
      seq: index + 1,
      taskId: task.id,
      namespace: task.namespace,
      name: task.name,
      type: event.type,
      attempt: event.attempt,
      at: event.at,
      data: event.data === null ? null : (JSON.parse(event.data) as Record<string, unknown>),
    }));
  }

  /** Each task's events live in its item, written with the change; there is no table-wide log yet. */
  async eventList(_params: EventListParams): Promise<TaskEvent[]> {
    throw new Error(NO_EVENT_LOG);
  }

  async outboxLease(): Promise<OutboxCursor> {
    throw new Error(NO_EVENT_LOG);
  }

  async outboxAdvance(): Promise<boolean> {
    throw new Error(NO_EVENT_LOG);
  }
}
