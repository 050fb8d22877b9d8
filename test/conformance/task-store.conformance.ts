/**
 * The TaskStore conformance suite, shared by every driver: a driver's test file calls
 * `describeTaskStoreConformance` with a factory for fresh, migrated stores.
 *
 * Portable by construction: nothing here knows the database. Each test gets its own store (and its
 * own namespace), passes `now` explicitly with fixed epoch values and never sleeps.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { uuidv7 } from '../../src/core/ids.ts';
import type { NewTask, Task, TaskEvent, TaskEventType, TaskWithAttempts } from '../../src/core/task.ts';
import { DEFAULT_BACKOFF, TASK_STATES } from '../../src/core/task.ts';
import type {
  LeaseTerms,
  TaskChangeResult,
  TaskClaimDueResult,
  TaskCreateResult,
  TaskListParams,
  TaskOutcome,
  TaskStore,
} from '../../src/store/store.ts';
import { leaseExpiry } from '../../src/store/store.ts';

export type MakeStore = () => Promise<{ store: TaskStore; cleanup: () => Promise<void> }>;

const T0 = Date.UTC(2026, 11, 1);
const SECOND = 1_000;
const LEASE_A: LeaseTerms = { owner: 'node-a', graceMs: 5 * SECOND };
const LEASE_B: LeaseTerms = { owner: 'node-b', graceMs: 5 * SECOND };
/** When a task scheduled at T0 with the default 30 s timeout, claimed at T0 by LEASE_A, loses its lease. */
const LEASE_END = T0 + 30 * SECOND + LEASE_A.graceMs;

function must<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('expected a value');
  return value;
}

function tokenOf(task: Task): string {
  if (task.leaseToken === null) throw new Error(`task ${task.id} holds no lease`);
  return task.leaseToken;
}

function okTask(result: TaskChangeResult): Task {
  if (result.status !== 'ok') throw new Error(`expected ok, got ${result.status}`);
  return result.task;
}

function createdTask(result: TaskCreateResult | undefined): Task {
  if (result?.status !== 'created') throw new Error(`expected created, got ${result?.status}`);
  return result.task;
}

function byScheduleThenId(a: Task, b: Task): number {
  return a.scheduledAt - b.scheduledAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export function describeTaskStoreConformance(driverName: string, makeStore: MakeStore): void {
  describe(`TaskStore conformance: ${driverName}`, () => {
    let store: TaskStore;
    let cleanup: () => Promise<void>;
    let ns: string;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
      ns = `ns-${randomUUID()}`;
    });
    afterEach(async () => {
      await cleanup();
    });

    function newTask(overrides: Partial<NewTask> = {}): NewTask {
      return {
        id: uuidv7(),
        namespace: ns,
        name: 'send-email',
        description: null,
        payload: { to: 'ada@example.com' },
        target: null,
        scheduledAt: T0,
        deadlineAt: null,
        maxAttempts: 3,
        timeoutMs: 30 * SECOND,
        backoff: DEFAULT_BACKOFF,
        idempotencyKey: null,
        requestHash: null,
        ...overrides,
      };
    }

    async function create(overrides: Partial<NewTask> = {}, now = T0): Promise<Task> {
      const [result] = await store.taskCreate({ tasks: [newTask(overrides)], now });
      return createdTask(result);
    }

    async function createMany(count: number, overrides: (i: number) => Partial<NewTask> = () => ({})): Promise<Task[]> {
      const results = await store.taskCreate({
        tasks: Array.from({ length: count }, (_, i) => newTask(overrides(i))),
        now: T0,
      });
      return results.map(createdTask);
    }

    async function claimDue(
      now: number,
      options: { until?: number; limit?: number; lease?: LeaseTerms } = {},
    ): Promise<TaskClaimDueResult> {
      return store.taskClaimDue({
        lease: options.lease ?? LEASE_A,
        now,
        lookaheadMs: (options.until ?? now + 1) - now,
        limit: options.limit ?? 100,
      });
    }

    /** Creates a task due at T0 and claims it at T0 by LEASE_A. */
    async function createClaimed(overrides: Partial<NewTask> = {}): Promise<Task> {
      const task = await create(overrides);
      const { claimed } = await claimDue(T0);
      const mine = claimed.find((t) => t.id === task.id);
      if (!mine) throw new Error('task was not claimed');
      return mine;
    }

    async function get(id: string): Promise<TaskWithAttempts> {
      const task = await store.taskGet({ id });
      if (!task) throw new Error(`task ${id} not found`);
      return task;
    }

    /** Every event in the store: its table-wide log where it keeps one, else each task's own events. */
    async function allEvents(): Promise<TaskEvent[]> {
      const events: TaskEvent[] = [];
      if (store.capabilities.eventLog) {
        for (let page = await store.eventList({ afterSeq: 0, limit: 100 }); page.length > 0; ) {
          events.push(...page);
          page = await store.eventList({ afterSeq: page.at(-1)?.seq ?? 0, limit: 100 });
        }
        return events;
      }
      for (let page = await store.taskList({ limit: 100 }); page.length > 0; ) {
        for (const task of page) events.push(...(await store.taskEvents({ id: task.id })));
        const last = must(page.at(-1));
        page = await store.taskList({ limit: 100, after: { scheduledAt: last.scheduledAt, id: last.id } });
      }
      return events;
    }

    /** The events written so far, to compare with later (eventsSince). */
    async function eventsMark(): Promise<Set<string>> {
      return new Set((await allEvents()).map((e) => `${e.taskId}/${e.seq}`));
    }

    async function eventsSince(mark: Set<string>): Promise<TaskEvent[]> {
      return (await allEvents()).filter((e) => !mark.has(`${e.taskId}/${e.seq}`));
    }

    /** Asserts that exactly the given events (type and attempt, for `taskId`) were written after `mark`. */
    async function expectEventsSince(
      mark: Set<string>,
      taskId: string,
      expected: [TaskEventType, number][],
      at: number,
    ): Promise<TaskEvent[]> {
      const events = await eventsSince(mark);
      expect(events.map((e) => [e.taskId, e.type, e.attempt, e.at])).toEqual(
        expected.map(([type, attempt]) => [taskId, type, attempt, at]),
      );
      return events;
    }

    function outcome(
      task: Task,
      fields: Partial<TaskOutcome> & Pick<TaskOutcome, 'kind'>,
      at = T0 + SECOND,
    ): TaskOutcome {
      return { id: task.id, leaseToken: tokenOf(task), startedAt: at - 100, endedAt: at, ...fields } as TaskOutcome;
    }

    describe('create', () => {
      it('stores every field and returns it as given, with state, attempts and timestamps filled in', async () => {
        const input = newTask({
          description: 'Welcome mail',
          payload: { to: 'ada@example.com', tags: ['a', 'b'], nested: { n: 1.5, ok: false, none: null } },
          target: { type: 'http', url: 'https://example.com/hook', method: 'PUT', headers: { 'x-key': 'v' } },
          scheduledAt: T0 + 60 * SECOND,
          deadlineAt: T0 + 3_600 * SECOND,
          maxAttempts: 7,
          timeoutMs: 12_345,
          backoff: { type: 'exponential', base_ms: 250, factor: 3, max_ms: 60_000, jitter: false },
          idempotencyKey: 'welcome-42',
          requestHash: 'hash-1',
        });
        const [result] = await store.taskCreate({ tasks: [input], now: T0 });
        const expected: Task = {
          ...input,
          state: 'scheduled',
          attempts: 0,
          leaseOwner: null,
          leaseToken: null,
          leaseExpiresAt: null,
          lastError: null,
          createdAt: T0,
          updatedAt: T0,
          finishedAt: null,
        };
        expect(result).toEqual({ status: 'created', task: expected, claimed: false });
        expect(await store.taskGet({ id: input.id })).toEqual({ ...expected, attemptLog: [] });
      });

      it('stores null optional fields as null', async () => {
        const task = await create({ description: null, payload: null, target: null, deadlineAt: null });
        expect(await get(task.id)).toMatchObject({
          description: null,
          payload: null,
          target: null,
          deadlineAt: null,
          idempotencyKey: null,
        });
      });

      it('round-trips payloads of every JSON type', async () => {
        for (const payload of ['text', 42, 0, true, false, [1, 'two', { three: 3 }], { deep: { er: ['x'] } }]) {
          const task = await create({ payload });
          expect((await get(task.id)).payload).toEqual(payload);
        }
      });

      it("writes one 'created' event in the same operation", async () => {
        const task = await create({ name: 'report' });
        const events = await allEvents();
        expect(events).toHaveLength(1);
        expect(events[0]).toMatchObject({
          taskId: task.id,
          namespace: ns,
          name: 'report',
          type: 'created',
          attempt: 0,
          at: T0,
        });
      });

      it('creates a full batch of maxBatchSize tasks in one call, results in input order', async () => {
        const inputs = Array.from({ length: store.capabilities.maxBatchSize }, (_, i) =>
          newTask({ scheduledAt: T0 + i }),
        );
        const results = await store.taskCreate({ tasks: inputs, now: T0 });
        expect(results.map((r) => [r.status, r.task.id])).toEqual(inputs.map((t) => ['created', t.id]));
        expect((await store.taskCountByState()).scheduled).toBe(inputs.length);
        expect((await allEvents()).filter((e) => e.type === 'created')).toHaveLength(inputs.length);
      });

      it('rejects a batch larger than maxBatchSize and creates nothing', async () => {
        const inputs = Array.from({ length: store.capabilities.maxBatchSize + 1 }, () => newTask());
        await expect(store.taskCreate({ tasks: inputs, now: T0 })).rejects.toThrow();
        expect((await store.taskCountByState()).scheduled).toBe(0);
      });

      it('rejects a duplicate id and creates nothing from that batch', async () => {
        const first = newTask();
        await expect(store.taskCreate({ tasks: [newTask(), first, { ...first }], now: T0 })).rejects.toThrow();
        expect((await store.taskCountByState()).scheduled).toBe(0);
        expect(await allEvents()).toEqual([]);
      });

      it("returns 'existing' with the first task for the same key and request hash, writing nothing", async () => {
        const first = await create({ idempotencyKey: 'k', requestHash: 'h' });
        const mark = await eventsMark();
        const [again] = await store.taskCreate({
          tasks: [newTask({ idempotencyKey: 'k', requestHash: 'h' })],
          now: T0 + SECOND,
        });
        expect(again).toEqual({ status: 'existing', task: first });
        expect(await store.taskList({ namespace: ns, limit: 10 })).toEqual([first]);
        expect(await eventsSince(mark)).toEqual([]);
      });

      it("returns 'conflict' with the first task for the same key and a different request hash", async () => {
        const first = await create({ idempotencyKey: 'k', requestHash: 'h1' });
        const [again] = await store.taskCreate({
          tasks: [newTask({ idempotencyKey: 'k', requestHash: 'h2' })],
          now: T0,
        });
        expect(again).toEqual({ status: 'conflict', task: first });
        expect(await store.taskList({ namespace: ns, limit: 10 })).toHaveLength(1);
      });

      it('treats the same key in different namespaces as two tasks', async () => {
        const a = await create({ idempotencyKey: 'k', requestHash: 'h' });
        const b = await create({ namespace: `${ns}-other`, idempotencyKey: 'k', requestHash: 'h' });
        expect(a.id).not.toBe(b.id);
        expect((await store.taskCountByState()).scheduled).toBe(2);
      });

      it('resolves duplicate keys inside one batch against the first of them', async () => {
        const first = newTask({ idempotencyKey: 'k', requestHash: 'h' });
        const replay = newTask({ idempotencyKey: 'k', requestHash: 'h' });
        const reuse = newTask({ idempotencyKey: 'k', requestHash: 'x' });
        const results = await store.taskCreate({ tasks: [first, replay, reuse], now: T0 });
        expect(results.map((r) => [r.status, r.task.id])).toEqual([
          ['created', first.id],
          ['existing', first.id],
          ['conflict', first.id],
        ]);
        expect((await store.taskCountByState()).scheduled).toBe(1);
      });
    });

    describe('create-and-claim', () => {
      /** Claim terms for a create at T0: tasks due before `until` are claimed. */
      const claim = (until: number, max = 100) => ({ lease: LEASE_A, lookaheadMs: until - T0, max });

      it('inserts tasks due within the lookahead already claimed, and leaves later ones scheduled', async () => {
        const inputs = [
          newTask({ scheduledAt: T0 + 100 }),
          newTask({ scheduledAt: T0 + 999 }),
          newTask({ scheduledAt: T0 + 1_000 }),
        ];
        const results = await store.taskCreate({ tasks: inputs, now: T0, claim: claim(T0 + 1_000) });
        expect(results.map((r) => r.status === 'created' && r.claimed)).toEqual([true, true, false]);
        for (const [i, input] of inputs.slice(0, 2).entries()) {
          const task = createdTask(results[i]);
          expect(task).toMatchObject({
            state: 'running',
            attempts: 1,
            leaseOwner: LEASE_A.owner,
            leaseExpiresAt: leaseExpiry(input, T0, LEASE_A.graceMs),
          });
          expect(task.leaseToken).toEqual(expect.any(String));
          expect((await get(task.id)).attemptLog).toEqual([
            {
              taskId: task.id,
              attempt: 1,
              leaseOwner: LEASE_A.owner,
              claimedAt: T0,
              startedAt: null,
              endedAt: null,
              outcome: null,
              error: null,
            },
          ]);
          expect((await allEvents()).filter((e) => e.taskId === task.id).map((e) => [e.type, e.attempt])).toEqual([
            ['created', 0],
            ['claimed', 1],
          ]);
        }
        expect(createdTask(results[2])).toMatchObject({ state: 'scheduled', attempts: 0, leaseToken: null });
        expect(createdTask(results[0]).leaseToken).not.toBe(createdTask(results[1]).leaseToken);
      });

      it('claims at most max tasks, the first ones given', async () => {
        const results = await store.taskCreate({
          tasks: Array.from({ length: 5 }, () => newTask()),
          now: T0,
          claim: claim(T0 + 1, 2),
        });
        expect(results.map((r) => r.status === 'created' && r.claimed)).toEqual([true, true, false, false, false]);
        expect(await store.taskCountByState()).toMatchObject({ running: 2, scheduled: 3 });
      });

      it('does not claim again on an idempotent replay', async () => {
        const input = newTask({ idempotencyKey: 'k', requestHash: 'h' });
        const [first] = await store.taskCreate({ tasks: [input], now: T0, claim: claim(T0 + 1) });
        const [again] = await store.taskCreate({ tasks: [{ ...input, id: uuidv7() }], now: T0, claim: claim(T0 + 1) });
        expect(again).toEqual({ status: 'existing', task: first?.task });
        expect((await get(input.id)).attempts).toBe(1);
      });

      it('is not claimed again by claimDue while its lease holds', async () => {
        await store.taskCreate({ tasks: [newTask()], now: T0, claim: claim(T0 + 1) });
        expect((await claimDue(LEASE_END - 1, { lease: LEASE_B })).claimed).toEqual([]);
      });
    });

    describe('get', () => {
      it('returns the task with its attempt log, oldest attempt first', async () => {
        const claimed = await createClaimed();
        await store.taskComplete({
          outcomes: [outcome(claimed, { kind: 'retry', error: 'boom', retryAt: T0 + 10 * SECOND })],
          now: T0 + SECOND,
        });
        const [again] = (await claimDue(T0 + 10 * SECOND, { lease: LEASE_B })).claimed;
        expect((await get(claimed.id)).attemptLog).toEqual([
          {
            taskId: claimed.id,
            attempt: 1,
            leaseOwner: 'node-a',
            claimedAt: T0,
            startedAt: T0 + 900,
            endedAt: T0 + SECOND,
            outcome: 'retry',
            error: 'boom',
          },
          {
            taskId: claimed.id,
            attempt: 2,
            leaseOwner: 'node-b',
            claimedAt: T0 + 10 * SECOND,
            startedAt: null,
            endedAt: null,
            outcome: null,
            error: null,
          },
        ]);
        expect(again?.attempts).toBe(2);
      });

      it('returns null for an unknown id', async () => {
        expect(await store.taskGet({ id: uuidv7() })).toBeNull();
      });
    });

    describe('list', () => {
      it('filters by namespace, state and name', async () => {
        const [a, b, c] = (await createMany(3, (i) => ({ name: i === 2 ? 'other' : 'send-email' }))).map((t) => t.id);
        const elsewhere = await create({ namespace: `${ns}-other` });
        await store.taskCancel({ id: must(b), now: T0 });
        const ids = async (params: TaskListParams) => (await store.taskList(params)).map((t) => t.id).sort();
        expect(await ids({ namespace: ns, limit: 10 })).toEqual([a, b, c].sort());
        expect(await ids({ namespace: ns, state: 'canceled', limit: 10 })).toEqual([b]);
        expect(await ids({ namespace: ns, name: 'other', limit: 10 })).toEqual([c]);
        expect(await ids({ state: 'scheduled', name: 'send-email', limit: 10 })).toEqual([a, elsewhere.id].sort());
        expect(await ids({ limit: 10 })).toHaveLength(4);
      });

      it('filters by inclusive scheduledAt bounds', async () => {
        const tasks = await createMany(5, (i) => ({ scheduledAt: T0 + i * SECOND }));
        const listed = await store.taskList({
          scheduledAfter: T0 + SECOND,
          scheduledBefore: T0 + 3 * SECOND,
          limit: 10,
        });
        expect(listed.map((t) => t.id)).toEqual(tasks.slice(1, 4).map((t) => t.id));
      });

      it('pages with after through every task exactly once, in (scheduledAt, id) order', async () => {
        // Five tasks share each scheduledAt, so the id must break ties.
        const tasks = await createMany(23, (i) => ({ scheduledAt: T0 + (i % 5) * SECOND }));
        const seen: Task[] = [];
        for (let page = await store.taskList({ limit: 4 }); page.length > 0; ) {
          expect(page.length).toBeLessThanOrEqual(4);
          seen.push(...page);
          const last = must(page.at(-1));
          page = await store.taskList({ limit: 4, after: { scheduledAt: last.scheduledAt, id: last.id } });
        }
        expect(seen.map((t) => t.id)).toEqual([...tasks].sort(byScheduleThenId).map((t) => t.id));
      });

      it('returns at most limit tasks, and none for a limit of 0', async () => {
        await createMany(5);
        expect(await store.taskList({ limit: 2 })).toHaveLength(2);
        expect(await store.taskList({ limit: 0 })).toEqual([]);
      });

      it('pages within a filter', async () => {
        const tasks = await createMany(10, (i) => ({ scheduledAt: T0 + (i % 3), name: i % 2 === 0 ? 'even' : 'odd' }));
        const even = tasks.filter((t) => t.name === 'even').sort(byScheduleThenId);
        const first = await store.taskList({ name: 'even', limit: 3 });
        const last = must(first.at(-1));
        const rest = await store.taskList({
          name: 'even',
          limit: 10,
          after: { scheduledAt: last.scheduledAt, id: last.id },
        });
        expect([...first, ...rest].map((t) => t.id)).toEqual(even.map((t) => t.id));
      });
    });

    describe('countByState', () => {
      it('reports zero for every state of an empty store', async () => {
        expect(await store.taskCountByState()).toEqual(Object.fromEntries(TASK_STATES.map((s) => [s, 0])));
      });

      it('counts tasks in each state', async () => {
        const [a, b] = await createMany(4);
        await store.taskCancel({ id: must(a).id, now: T0 });
        await store.taskRunNow({ id: must(b).id, now: T0 - SECOND });
        await claimDue(T0 - SECOND, { limit: 1 });
        expect(await store.taskCountByState()).toEqual({
          scheduled: 2,
          running: 1,
          succeeded: 0,
          failed: 0,
          canceled: 1,
          expired: 0,
        });
      });
    });

    describe('claimDue', () => {
      it('reports the time it claimed at, and keeps its own clock when no time is given', async () => {
        expect((await claimDue(T0)).now).toBe(T0);
        const before = Date.now();
        const { now } = await store.taskClaimDue({ lease: LEASE_A, lookaheadMs: 0, limit: 1 });
        // The store's own clock: the process's for an embedded store, the server's otherwise.
        expect(Math.abs(now - before)).toBeLessThan(60_000);
      });

      it('claims only tasks scheduled before now + lookahead, oldest first', async () => {
        const [late, onTime, early, future] = (
          await createMany(4, (i) => ({ scheduledAt: [T0, T0 - 10, T0 - SECOND, T0 + 10][i] }))
        ).map((t) => t.id);
        const { claimed, ended } = await claimDue(T0, { until: T0 + 10 });
        expect(claimed.map((t) => t.id)).toEqual([early, onTime, late]);
        expect(ended).toEqual([]);
        expect((await get(must(future))).state).toBe('scheduled');
      });

      it('respects limit and never returns a task twice across claims', async () => {
        const tasks = await createMany(7, (i) => ({ scheduledAt: T0 - i }));
        const first = await claimDue(T0, { limit: 3 });
        const second = await claimDue(T0, { limit: 3 });
        const third = await claimDue(T0, { limit: 3 });
        expect([first.claimed.length, second.claimed.length, third.claimed.length]).toEqual([3, 3, 1]);
        const ids = [...first.claimed, ...second.claimed, ...third.claimed].map((t) => t.id);
        expect(ids).toEqual([...tasks].sort(byScheduleThenId).map((t) => t.id));
        expect((await claimDue(T0)).claimed).toEqual([]);
      });

      it('claims nothing with a limit of 0', async () => {
        await create();
        expect(await claimDue(T0, { limit: 0 })).toMatchObject({ claimed: [], ended: [] });
        expect((await store.taskCountByState()).scheduled).toBe(1);
      });

      it('counts an attempt, leases the task to the caller and logs the claim', async () => {
        const task = await create();
        const mark = await eventsMark();
        const [claimed] = (await claimDue(T0 + 20)).claimed;
        expect(claimed).toEqual({
          ...task,
          state: 'running',
          attempts: 1,
          leaseOwner: LEASE_A.owner,
          leaseToken: expect.any(String),
          leaseExpiresAt: leaseExpiry(task, T0 + 20, LEASE_A.graceMs),
          updatedAt: T0 + 20,
        });
        expect(await get(task.id)).toEqual({
          ...claimed,
          attemptLog: [
            expect.objectContaining({ attempt: 1, leaseOwner: LEASE_A.owner, claimedAt: T0 + 20, outcome: null }),
          ],
        });
        await expectEventsSince(mark, task.id, [['claimed', 1]], T0 + 20);
      });

      it('leases a task claimed ahead of its time from its scheduledAt', async () => {
        const task = await create({ scheduledAt: T0 + 500 });
        const [claimed] = (await claimDue(T0, { until: T0 + SECOND })).claimed;
        expect(claimed?.leaseExpiresAt).toBe(T0 + 500 + task.timeoutMs + LEASE_A.graceMs);
      });

      it('does not reclaim a running task while its lease holds', async () => {
        await createClaimed();
        expect(await claimDue(LEASE_END - 1, { lease: LEASE_B })).toMatchObject({ claimed: [], ended: [] });
      });

      it('reclaims a task whose lease expired, with a new token, logging the lost attempt lease_expired', async () => {
        const first = await createClaimed();
        const mark = await eventsMark();
        const [second] = (await claimDue(LEASE_END, { lease: LEASE_B })).claimed;
        expect(second).toMatchObject({ id: first.id, state: 'running', attempts: 2, leaseOwner: LEASE_B.owner });
        expect(second?.leaseToken).not.toBe(first.leaseToken);
        expect((await get(first.id)).attemptLog.map((a) => [a.attempt, a.leaseOwner, a.outcome])).toEqual([
          [1, LEASE_A.owner, 'lease_expired'],
          [2, LEASE_B.owner, null],
        ]);
        await expectEventsSince(
          mark,
          first.id,
          [
            ['lease_expired', 1],
            ['claimed', 2],
          ],
          LEASE_END,
        );
        // The first holder comes back: its lease is gone.
        expect(
          await store.taskComplete({ outcomes: [outcome(first, { kind: 'succeeded' })], now: LEASE_END + 1 }),
        ).toEqual([{ id: first.id, applied: false }]);
      });

      it('ends a crashed task failed instead of claiming it once its attempts are used up', async () => {
        const task = await createClaimed({ maxAttempts: 2 });
        const lease2 = leaseExpiry(task, LEASE_END, LEASE_A.graceMs);
        await claimDue(LEASE_END);
        const mark = await eventsMark();
        const { claimed, ended } = await claimDue(lease2);
        expect(claimed).toEqual([]);
        expect(ended).toEqual([
          expect.objectContaining({
            id: task.id,
            state: 'failed',
            attempts: 2,
            finishedAt: lease2,
            leaseOwner: null,
            leaseToken: null,
            leaseExpiresAt: null,
          }),
        ]);
        expect(ended[0]?.lastError).toMatch(/lease expired/);
        expect((await get(task.id)).attemptLog.map((a) => a.outcome)).toEqual(['lease_expired', 'lease_expired']);
        const events = await expectEventsSince(
          mark,
          task.id,
          [
            ['lease_expired', 2],
            ['failed', 2],
          ],
          lease2,
        );
        expect(events[1]?.data).toMatchObject({ error: ended[0]?.lastError });
      });

      it('ends a task past its deadline expired instead of claiming it', async () => {
        const task = await create({ deadlineAt: T0 + 50 });
        const mark = await eventsMark();
        const { claimed, ended } = await claimDue(T0 + 51);
        expect(claimed).toEqual([]);
        expect(ended).toEqual([{ ...task, state: 'expired', finishedAt: T0 + 51, updatedAt: T0 + 51 }]);
        await expectEventsSince(mark, task.id, [['expired', 0]], T0 + 51);
      });

      it('still claims a task whose deadline is now', async () => {
        await create({ deadlineAt: T0 + 50 });
        expect((await claimDue(T0 + 50)).claimed).toHaveLength(1);
      });

      it('ends a crashed task past its deadline expired, logging its attempt lease_expired', async () => {
        const task = await createClaimed({ deadlineAt: T0 + 10 * SECOND });
        const mark = await eventsMark();
        const { claimed, ended } = await claimDue(LEASE_END);
        expect(claimed).toEqual([]);
        expect(ended).toEqual([
          expect.objectContaining({
            id: task.id,
            state: 'expired',
            attempts: 1,
            leaseToken: null,
            finishedAt: LEASE_END,
          }),
        ]);
        expect((await get(task.id)).attemptLog.map((a) => a.outcome)).toEqual(['lease_expired']);
        await expectEventsSince(
          mark,
          task.id,
          [
            ['lease_expired', 1],
            ['expired', 1],
          ],
          LEASE_END,
        );
      });

      it('never claims canceled, succeeded, failed or expired tasks', async () => {
        const [toCancel, toSucceed, toFail] = await createMany(3);
        await store.taskCancel({ id: must(toCancel).id, now: T0 });
        const claimed = new Map((await claimDue(T0)).claimed.map((t) => [t.id, t]));
        await store.taskComplete({
          outcomes: [
            outcome(must(claimed.get(must(toSucceed).id)), { kind: 'succeeded' }),
            outcome(must(claimed.get(must(toFail).id)), { kind: 'failed', error: 'no' }),
          ],
          now: T0 + SECOND,
        });
        await create({ deadlineAt: T0 });
        await claimDue(T0 + SECOND);
        expect(await store.taskCountByState()).toEqual({
          scheduled: 0,
          running: 0,
          succeeded: 1,
          failed: 1,
          canceled: 1,
          expired: 1,
        });
        expect(await claimDue(T0 + 1_000 * SECOND, { until: T0 + 2_000 * SECOND })).toEqual({
          now: T0 + 1_000 * SECOND,
          claimed: [],
          ended: [],
        });
      });
    });

    describe('complete', () => {
      it('succeeded: finishes the task, clears the lease and logs the attempt', async () => {
        const task = await createClaimed();
        const mark = await eventsMark();
        const results = await store.taskComplete({
          outcomes: [outcome(task, { kind: 'succeeded' })],
          now: T0 + 2 * SECOND,
        });
        expect(results).toEqual([{ id: task.id, applied: true }]);
        const after = await get(task.id);
        expect(after).toMatchObject({
          state: 'succeeded',
          finishedAt: T0 + 2 * SECOND,
          updatedAt: T0 + 2 * SECOND,
          leaseOwner: null,
          leaseToken: null,
          leaseExpiresAt: null,
          attempts: 1,
        });
        expect(after.attemptLog).toEqual([
          expect.objectContaining({
            attempt: 1,
            startedAt: T0 + 900,
            endedAt: T0 + SECOND,
            outcome: 'succeeded',
            error: null,
          }),
        ]);
        await expectEventsSince(mark, task.id, [['succeeded', 1]], T0 + 2 * SECOND);
      });

      it('failed: records the error', async () => {
        const task = await createClaimed();
        const mark = await eventsMark();
        await store.taskComplete({
          outcomes: [outcome(task, { kind: 'failed', error: 'HTTP 400' })],
          now: T0 + SECOND,
        });
        const after = await get(task.id);
        expect(after).toMatchObject({
          state: 'failed',
          lastError: 'HTTP 400',
          finishedAt: T0 + SECOND,
          leaseToken: null,
        });
        expect(after.attemptLog[0]).toMatchObject({ outcome: 'failed', error: 'HTTP 400' });
        const [event] = await expectEventsSince(mark, task.id, [['failed', 1]], T0 + SECOND);
        expect(event?.data).toEqual({ error: 'HTTP 400' });
      });

      it('retry: back to scheduled at retryAt, lease cleared, claimable again then', async () => {
        const task = await createClaimed();
        const mark = await eventsMark();
        const retryAt = T0 + 60 * SECOND;
        await store.taskComplete({
          outcomes: [outcome(task, { kind: 'retry', error: 'timeout', retryAt })],
          now: T0 + SECOND,
        });
        expect(await get(task.id)).toMatchObject({
          state: 'scheduled',
          scheduledAt: retryAt,
          lastError: 'timeout',
          attempts: 1,
          finishedAt: null,
          leaseOwner: null,
          leaseToken: null,
          leaseExpiresAt: null,
        });
        const [event] = await expectEventsSince(mark, task.id, [['retry_scheduled', 1]], T0 + SECOND);
        expect(event?.data).toEqual({ error: 'timeout', retry_at: retryAt });
        expect((await claimDue(retryAt - 1)).claimed).toEqual([]);
        expect((await claimDue(retryAt)).claimed).toEqual([expect.objectContaining({ id: task.id, attempts: 2 })]);
      });

      it('expired: finishes the task expired', async () => {
        const task = await createClaimed();
        const mark = await eventsMark();
        await store.taskComplete({ outcomes: [outcome(task, { kind: 'expired' })], now: T0 + SECOND });
        expect(await get(task.id)).toMatchObject({ state: 'expired', finishedAt: T0 + SECOND, leaseToken: null });
        expect((await get(task.id)).attemptLog[0]?.outcome).toBe('expired');
        await expectEventsSince(mark, task.id, [['expired', 1]], T0 + SECOND);
      });

      it('a stale lease token applies nothing', async () => {
        const task = await createClaimed();
        const before = await get(task.id);
        const mark = await eventsMark();
        const results = await store.taskComplete({
          outcomes: [{ ...outcome(task, { kind: 'succeeded' }), leaseToken: 'stale' }],
          now: T0 + SECOND,
        });
        expect(results).toEqual([{ id: task.id, applied: false }]);
        expect(await get(task.id)).toEqual(before);
        expect(await eventsSince(mark)).toEqual([]);
      });

      it('applies only the valid outcomes of a mixed batch, and each lease once', async () => {
        await createMany(3);
        const [a, b, c] = (await claimDue(T0)).claimed.map(must);
        const results = await store.taskComplete({
          outcomes: [
            outcome(must(a), { kind: 'succeeded' }),
            { ...outcome(must(b), { kind: 'failed', error: 'x' }), leaseToken: 'stale' },
            outcome(must(c), { kind: 'failed', error: 'y' }),
            outcome(must(a), { kind: 'failed', error: 'twice' }),
            { ...outcome(must(a), { kind: 'succeeded' }), id: uuidv7() },
          ],
          now: T0 + SECOND,
        });
        expect(results.map((r) => r.applied)).toEqual([true, false, true, false, false]);
        const states = await Promise.all([a, b, c].map(async (t) => (await get(must(t).id)).state));
        expect(states).toEqual(['succeeded', 'running', 'failed']);
      });
    });

    describe('release', () => {
      it('puts the task back to scheduled with the lease cleared and the attempt refunded', async () => {
        const task = await createClaimed();
        const mark = await eventsMark();
        const results = await store.taskRelease({
          leases: [{ id: task.id, leaseToken: tokenOf(task) }],
          now: T0 + SECOND,
        });
        expect(results).toEqual([{ id: task.id, applied: true }]);
        const after = await get(task.id);
        expect(after).toMatchObject({
          state: 'scheduled',
          attempts: 0,
          scheduledAt: T0,
          leaseOwner: null,
          leaseToken: null,
          leaseExpiresAt: null,
        });
        expect(after.attemptLog.map((a) => a.outcome)).toEqual(['released']);
        await expectEventsSince(mark, task.id, [['released', 0]], T0 + SECOND);
        expect((await claimDue(T0 + SECOND, { lease: LEASE_B })).claimed).toEqual([
          expect.objectContaining({ id: task.id, attempts: 1 }),
        ]);
      });

      it('a stale lease token releases nothing', async () => {
        const task = await createClaimed();
        const results = await store.taskRelease({ leases: [{ id: task.id, leaseToken: 'stale' }], now: T0 + SECOND });
        expect(results).toEqual([{ id: task.id, applied: false }]);
        expect((await get(task.id)).state).toBe('running');
      });
    });

    describe('heartbeat', () => {
      it('extends a held lease, so the task is not recovered until the new end, and writes no event', async () => {
        const task = await createClaimed();
        const firstEnd = task.leaseExpiresAt as number;
        const mark = await eventsMark();
        const at = firstEnd - SECOND;
        const [result] = await store.taskHeartbeat({
          leases: [{ id: task.id, leaseToken: tokenOf(task), extendMs: 60 * SECOND }],
          now: at,
        });
        expect(result).toEqual({ id: task.id, applied: true, leaseExpiresAt: at + 60 * SECOND });
        expect(await get(task.id)).toMatchObject({ state: 'running', leaseExpiresAt: at + 60 * SECOND });
        expect(await eventsSince(mark)).toEqual([]);
        // Past the first end, before the new one: nobody may take it; after the new one, it is recovered.
        expect((await claimDue(firstEnd + SECOND, { lease: LEASE_B })).claimed).toEqual([]);
        expect((await claimDue(at + 61 * SECOND, { lease: LEASE_B })).claimed).toEqual([
          expect.objectContaining({ id: task.id, attempts: 2 }),
        ]);
      });

      it('never shortens a lease', async () => {
        const task = await createClaimed();
        const [result] = await store.taskHeartbeat({
          leases: [{ id: task.id, leaseToken: tokenOf(task), extendMs: 1 }],
          now: T0,
        });
        expect(result).toEqual({ id: task.id, applied: true, leaseExpiresAt: task.leaseExpiresAt });
      });

      it('a stale token, or a task no longer running, extends nothing', async () => {
        const task = await createClaimed();
        const other = await create();
        const results = await store.taskHeartbeat({
          leases: [
            { id: task.id, leaseToken: 'stale', extendMs: 60 * SECOND },
            { id: other.id, leaseToken: 'none', extendMs: 60 * SECOND },
          ],
          now: T0 + SECOND,
        });
        expect(results).toEqual([
          { id: task.id, applied: false, leaseExpiresAt: null },
          { id: other.id, applied: false, leaseExpiresAt: null },
        ]);
        expect((await get(task.id)).leaseExpiresAt).toBe(task.leaseExpiresAt);
        await store.taskComplete({ outcomes: [outcome(task, { kind: 'succeeded' }, T0 + SECOND)], now: T0 + SECOND });
        const [late] = await store.taskHeartbeat({
          leases: [{ id: task.id, leaseToken: tokenOf(task), extendMs: 60 * SECOND }],
          now: T0 + 2 * SECOND,
        });
        expect(late?.applied).toBe(false);
      });
    });

    describe('cancel', () => {
      it('cancels a scheduled task', async () => {
        const task = await create();
        const mark = await eventsMark();
        const canceled = okTask(await store.taskCancel({ id: task.id, now: T0 + SECOND }));
        expect(canceled).toEqual({ ...task, state: 'canceled', finishedAt: T0 + SECOND, updatedAt: T0 + SECOND });
        await expectEventsSince(mark, task.id, [['canceled', 0]], T0 + SECOND);
      });

      it('refuses a running task without its lease token, or with another', async () => {
        const task = await createClaimed();
        const mark = await eventsMark();
        expect(await store.taskCancel({ id: task.id, now: T0 })).toEqual({ status: 'invalid_state', task });
        expect(await store.taskCancel({ id: task.id, now: T0, leaseToken: 'stale' })).toEqual({
          status: 'invalid_state',
          task,
        });
        expect(await eventsSince(mark)).toEqual([]);
      });

      it('cancels a running task for its lease holder', async () => {
        const task = await createClaimed();
        const mark = await eventsMark();
        const canceled = okTask(await store.taskCancel({ id: task.id, now: T0 + 5, leaseToken: tokenOf(task) }));
        expect(canceled).toMatchObject({
          state: 'canceled',
          finishedAt: T0 + 5,
          leaseOwner: null,
          leaseToken: null,
          leaseExpiresAt: null,
        });
        expect((await get(task.id)).attemptLog.map((a) => a.outcome)).toEqual(['canceled']);
        await expectEventsSince(mark, task.id, [['canceled', 1]], T0 + 5);
      });

      it('refuses a task already finished', async () => {
        const task = await create();
        const canceled = okTask(await store.taskCancel({ id: task.id, now: T0 }));
        expect(await store.taskCancel({ id: task.id, now: T0 + 1 })).toEqual({
          status: 'invalid_state',
          task: canceled,
        });
      });

      it('reports an unknown id as not_found', async () => {
        expect(await store.taskCancel({ id: uuidv7(), now: T0 })).toEqual({ status: 'not_found' });
      });
    });

    describe('update', () => {
      it('applies the changes given to a scheduled task and keeps the rest', async () => {
        const task = await create({ description: 'old', deadlineAt: T0 + 100 * SECOND });
        const mark = await eventsMark();
        const changes = {
          name: 'renamed',
          payload: { v: 2 },
          target: { type: 'http', url: 'https://example.com/x' } as const,
          scheduledAt: T0 + 5 * SECOND,
          maxAttempts: 9,
          timeoutMs: 1_000,
          backoff: { ...DEFAULT_BACKOFF, base_ms: 10 },
        };
        const updated = okTask(await store.taskUpdate({ id: task.id, now: T0 + SECOND, changes }));
        expect(updated).toEqual({ ...task, ...changes, updatedAt: T0 + SECOND });
        expect(await get(task.id)).toEqual({ ...updated, attemptLog: [] });
        await expectEventsSince(mark, task.id, [['updated', 0]], T0 + SECOND);
      });

      it('clears nullable fields set to null', async () => {
        const task = await create({ description: 'd', deadlineAt: T0 + SECOND, target: { type: 'handler' } });
        const updated = okTask(
          await store.taskUpdate({
            id: task.id,
            now: T0,
            changes: { description: null, deadlineAt: null, target: null },
          }),
        );
        expect(updated).toMatchObject({ description: null, deadlineAt: null, target: null });
      });

      it("writes 'rescheduled' when only scheduledAt changes", async () => {
        const task = await create();
        const mark = await eventsMark();
        okTask(await store.taskUpdate({ id: task.id, now: T0, changes: { scheduledAt: T0 + 9 * SECOND } }));
        await expectEventsSince(mark, task.id, [['rescheduled', 0]], T0);
      });

      it('refuses a running task without its lease token, finished tasks, and unknown ids', async () => {
        const running = await createClaimed();
        expect(await store.taskUpdate({ id: running.id, now: T0, changes: { name: 'x' } })).toEqual({
          status: 'invalid_state',
          task: running,
        });
        const done = okTask(await store.taskCancel({ id: (await create()).id, now: T0 }));
        expect(await store.taskUpdate({ id: done.id, now: T0, changes: { name: 'x' } })).toEqual({
          status: 'invalid_state',
          task: done,
        });
        expect(await store.taskUpdate({ id: uuidv7(), now: T0, changes: { name: 'x' } })).toEqual({
          status: 'not_found',
        });
      });

      it("the lease holder's edit releases the lease and refunds the attempt", async () => {
        const task = await createClaimed();
        const mark = await eventsMark();
        const updated = okTask(
          await store.taskUpdate({
            id: task.id,
            now: T0 + 5,
            changes: { scheduledAt: T0 + 60 * SECOND, name: 'later' },
            leaseToken: tokenOf(task),
          }),
        );
        expect(updated).toMatchObject({
          state: 'scheduled',
          scheduledAt: T0 + 60 * SECOND,
          name: 'later',
          attempts: 0,
          leaseOwner: null,
          leaseToken: null,
          leaseExpiresAt: null,
        });
        expect((await get(task.id)).attemptLog.map((a) => a.outcome)).toEqual(['released']);
        await expectEventsSince(mark, task.id, [['updated', 0]], T0 + 5);
      });
    });

    describe('retry', () => {
      it('puts a failed task back to scheduled now with a fresh set of attempts', async () => {
        const task = await createClaimed({ maxAttempts: 1 });
        await store.taskComplete({ outcomes: [outcome(task, { kind: 'failed', error: 'boom' })], now: T0 + SECOND });
        const mark = await eventsMark();
        const retried = okTask(await store.taskRetry({ id: task.id, now: T0 + 10 * SECOND }));
        expect(retried).toMatchObject({
          state: 'scheduled',
          scheduledAt: T0 + 10 * SECOND,
          attempts: 0,
          finishedAt: null,
          leaseToken: null,
        });
        await expectEventsSince(mark, task.id, [['retried', 0]], T0 + 10 * SECOND);
        expect((await claimDue(T0 + 10 * SECOND)).claimed).toEqual([
          expect.objectContaining({ id: task.id, attempts: 1 }),
        ]);
      });

      it('refuses tasks that have not failed, and reports unknown ids', async () => {
        const running = await createClaimed();
        const scheduled = await create();
        expect(await store.taskRetry({ id: scheduled.id, now: T0 })).toEqual({
          status: 'invalid_state',
          task: scheduled,
        });
        expect(await store.taskRetry({ id: running.id, now: T0 })).toEqual({ status: 'invalid_state', task: running });
        expect(await store.taskRetry({ id: uuidv7(), now: T0 })).toEqual({ status: 'not_found' });
      });
    });

    describe('runNow', () => {
      it('moves a scheduled task to now', async () => {
        const task = await create({ scheduledAt: T0 + 3_600 * SECOND });
        const mark = await eventsMark();
        const moved = okTask(await store.taskRunNow({ id: task.id, now: T0 + 7 }));
        expect(moved).toEqual({ ...task, scheduledAt: T0 + 7, updatedAt: T0 + 7 });
        await expectEventsSince(mark, task.id, [['run_now', 0]], T0 + 7);
        expect((await claimDue(T0 + 7)).claimed.map((t) => t.id)).toEqual([task.id]);
      });

      it('refuses running and finished tasks, and reports unknown ids', async () => {
        const running = await createClaimed();
        const canceled = okTask(await store.taskCancel({ id: (await create()).id, now: T0 }));
        expect(await store.taskRunNow({ id: running.id, now: T0 })).toEqual({ status: 'invalid_state', task: running });
        expect(await store.taskRunNow({ id: canceled.id, now: T0 })).toEqual({
          status: 'invalid_state',
          task: canceled,
        });
        expect(await store.taskRunNow({ id: uuidv7(), now: T0 })).toEqual({ status: 'not_found' });
      });
    });

    describe('events', () => {
      it('a lifecycle writes one event per transition, in commit order', async () => {
        const task = await createClaimed();
        await store.taskComplete({
          outcomes: [outcome(task, { kind: 'retry', error: 'e', retryAt: T0 + 10 * SECOND })],
          now: T0 + SECOND,
        });
        const [again] = (await claimDue(T0 + 10 * SECOND)).claimed;
        await store.taskComplete({
          outcomes: [outcome(must(again), { kind: 'succeeded' }, T0 + 11 * SECOND)],
          now: T0 + 11 * SECOND,
        });
        const events = await allEvents();
        expect(events.map((e) => [e.type, e.attempt, e.at])).toEqual([
          ['created', 0, T0],
          ['claimed', 1, T0],
          ['retry_scheduled', 1, T0 + SECOND],
          ['claimed', 2, T0 + 10 * SECOND],
          ['succeeded', 2, T0 + 11 * SECOND],
        ]);
        expect(events.every((e) => e.taskId === task.id && e.namespace === ns && e.name === task.name)).toBe(true);
        const seqs = events.map((e) => e.seq);
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
        expect(new Set(seqs).size).toBe(seqs.length);
      });

      it('eventList pages through every event once with afterSeq', async (context) => {
        if (!store.capabilities.eventLog) context.skip();
        await createMany(7);
        await claimDue(T0, { limit: 4 });
        const everything = await store.eventList({ afterSeq: 0, limit: 1_000 });
        expect(everything).toHaveLength(11);
        const paged: TaskEvent[] = [];
        for (let page = await store.eventList({ afterSeq: 0, limit: 3 }); page.length > 0; ) {
          expect(page.length).toBeLessThanOrEqual(3);
          paged.push(...page);
          page = await store.eventList({ afterSeq: page.at(-1)?.seq ?? 0, limit: 3 });
        }
        expect(paged).toEqual(everything);
      });

      it('an outbox cursor is leased to one owner at a time and moves forward only for it', async (context) => {
        if (!store.capabilities.eventLog) context.skip();
        const name = `relay-${ns}`;
        const lease = (owner: string, ttlMs: number, now: number) => store.outboxLease({ name, owner, ttlMs, now });
        expect(await lease('a', 10_000, T0)).toEqual({ held: true, seq: 0 });
        expect(await lease('b', 10_000, T0 + 1)).toEqual({ held: false, seq: 0 });
        expect(await store.outboxAdvance({ name, owner: 'b', seq: 5 })).toBe(false);
        expect(await store.outboxAdvance({ name, owner: 'a', seq: 5 })).toBe(true);
        expect(await store.outboxAdvance({ name, owner: 'a', seq: 3 })).toBe(true);
        // Renewed by its holder, then lapsed: the other owner takes it, at the cursor's place.
        expect(await lease('a', 10_000, T0 + 5_000)).toEqual({ held: true, seq: 5 });
        expect(await lease('b', 10_000, T0 + 14_999)).toEqual({ held: false, seq: 5 });
        expect(await lease('b', 10_000, T0 + 15_000)).toEqual({ held: true, seq: 5 });
        expect(await store.outboxAdvance({ name, owner: 'a', seq: 9 })).toBe(false);
        // Given up (ttl 0): free for anyone at once.
        expect(await lease('b', 0, T0 + 16_000)).toEqual({ held: true, seq: 5 });
        expect(await lease('a', 10_000, T0 + 16_000)).toEqual({ held: true, seq: 5 });
        expect(await store.outboxLease({ name: `other-${ns}`, owner: 'b', ttlMs: 1_000, now: T0 })).toEqual({
          held: true,
          seq: 0,
        });
      });

      it('refused operations write no events', async () => {
        const running = await createClaimed({ idempotencyKey: 'k', requestHash: 'h' });
        const mark = await eventsMark();
        await store.taskCreate({
          tasks: [
            newTask({ idempotencyKey: 'k', requestHash: 'h' }),
            newTask({ idempotencyKey: 'k', requestHash: 'x' }),
          ],
          now: T0,
        });
        await store.taskComplete({
          outcomes: [{ ...outcome(running, { kind: 'succeeded' }), leaseToken: 'stale' }],
          now: T0,
        });
        await store.taskRelease({ leases: [{ id: running.id, leaseToken: 'stale' }], now: T0 });
        await store.taskCancel({ id: running.id, now: T0 });
        await store.taskUpdate({ id: running.id, now: T0, changes: { name: 'x' } });
        await store.taskRetry({ id: running.id, now: T0 });
        await store.taskRunNow({ id: running.id, now: T0 });
        await store.taskCancel({ id: uuidv7(), now: T0 });
        expect(await eventsSince(mark)).toEqual([]);
      });
    });

    describe('worker queues', () => {
      const forQueue = (queue: string): Partial<NewTask> => ({ target: { type: 'worker', queue } });
      const claimQueues = (now: number, queues: { queue: string; limit: number }[], limit = 100) =>
        store.taskClaimDue({ lease: LEASE_A, now, lookaheadMs: 1, limit, queues });

      it("leaves a queue's tasks to claims that ask for that queue, each up to its limit, oldest first", async (ctx) => {
        if (!store.capabilities.workerQueues) return ctx.skip();
        const own = await create({ scheduledAt: T0 - 5 });
        const mails = await createMany(4, (i) => ({ ...forQueue('mail'), scheduledAt: T0 - 4 + i }));
        const sms = await create({ ...forQueue('sms'), scheduledAt: T0 - 10 });

        const plain = await claimDue(T0);
        expect(plain.claimed.map((t) => t.id)).toEqual([own.id]);

        const mailOnly = await claimQueues(T0, [{ queue: 'mail', limit: 3 }]);
        expect(mailOnly.claimed.map((t) => t.id)).toEqual(mails.slice(0, 3).map((t) => t.id));
        expect(mailOnly.claimed.every((t) => t.state === 'running' && t.attempts === 1)).toBe(true);

        const both = await claimQueues(T0, [
          { queue: 'mail', limit: 5 },
          { queue: 'sms', limit: 5 },
          { queue: 'empty', limit: 5 },
        ]);
        expect(both.claimed.map((t) => t.id)).toEqual([sms.id, must(mails[3]).id]);
      });

      it("claims a queue's tasks with no room for the node's own", async (ctx) => {
        if (!store.capabilities.workerQueues) return ctx.skip();
        await create();
        const mail = await create(forQueue('mail'));
        const result = await claimQueues(T0, [{ queue: 'mail', limit: 1 }], 0);
        expect(result.claimed.map((t) => t.id)).toEqual([mail.id]);
      });

      it('never create-and-claims a task for a queue', async (ctx) => {
        if (!store.capabilities.workerQueues) return ctx.skip();
        const results = await store.taskCreate({
          tasks: [newTask(forQueue('mail')), newTask()],
          now: T0,
          claim: { lease: LEASE_A, lookaheadMs: SECOND, max: 10 },
        });
        expect(results.map((r) => r.status === 'created' && r.claimed)).toEqual([false, true]);
        expect(must(results[0]).task.state).toBe('scheduled');
      });

      it('takes over a queue task whose lease lapsed only for a claim that asks for its queue', async (ctx) => {
        if (!store.capabilities.workerQueues) return ctx.skip();
        const task = await create(forQueue('mail'));
        await claimQueues(T0, [{ queue: 'mail', limit: 1 }]);
        expect((await claimDue(LEASE_END + 1)).claimed).toEqual([]);
        const retaken = await claimQueues(LEASE_END + 1, [{ queue: 'mail', limit: 1 }]);
        expect(retaken.claimed.map((t) => [t.id, t.attempts])).toEqual([[task.id, 2]]);
      });

      it('follows an edited target: a task moved into a queue leaves the plain claims', async (ctx) => {
        if (!store.capabilities.workerQueues) return ctx.skip();
        const task = await create();
        okTask(
          await store.taskUpdate({ id: task.id, now: T0, changes: { target: { type: 'worker', queue: 'mail' } } }),
        );
        expect((await claimDue(T0)).claimed).toEqual([]);
        expect((await claimQueues(T0, [{ queue: 'mail', limit: 1 }])).claimed.map((t) => t.id)).toEqual([task.id]);
      });
    });

    describe('concurrency', () => {
      it('two claims racing never return the same task', async () => {
        await createMany(30);
        const [a, b] = await Promise.all([claimDue(T0, { limit: 20 }), claimDue(T0, { limit: 20, lease: LEASE_B })]);
        const ids = [...a.claimed, ...b.claimed].map((t) => t.id);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids).toHaveLength(30);
      });
    });
  });
}
