/**
 * Reports from remote workers on tasks handed to them (a Kafka target with `await_result`, or a
 * worker queue over HTTP): each
 * fenced by the lease token the task was handed over with, so a report for an old lease, or a
 * second report for the same lease, changes nothing.
 *
 * - `heartbeat` extends the lease by the task's timeout plus the lease grace, from now;
 * - `succeeded` / `failed` settle the attempt by the same rule as an attempt run here
 *   (outcome.ts): failures read their task first (attempts left, backoff), successes need no read.
 *
 * Heartbeats go first, so a batch holding a task's heartbeat and then its outcome applies both.
 */
import type { Clock } from '../core/clock.ts';
import type { TaskOutcome, TaskStore } from '../store/store.ts';
import { outcomeFor } from './outcome.ts';

export interface WorkerReport {
  taskId: string;
  leaseToken: string;
  /** `heartbeat`: still working; the lease is extended by the task's timeout plus the grace. */
  status: 'succeeded' | 'failed' | 'heartbeat';
  error?: string;
  /** For a failure: may another attempt help? (default true) */
  retryable?: boolean;
  retryAfterMs?: number;
}

/** What became of a report: applied, or changed nothing (stale lease, unknown task). */
export type ReportVerdict = 'applied' | 'stale' | 'not_found';

export interface WorkerReportContext {
  store: TaskStore;
  clock: Clock;
  leaseGraceMs: number;
}

export async function applyWorkerReports(
  reports: WorkerReport[],
  { store, clock, leaseGraceMs }: WorkerReportContext,
): Promise<{ verdicts: ReportVerdict[]; settled: number }> {
  const now = clock.now();
  const verdicts = new Map<WorkerReport, ReportVerdict>();
  const firstOf = (wanted: (r: WorkerReport) => boolean) => {
    const first = new Map<string, WorkerReport>();
    for (const r of reports) if (wanted(r) && !first.has(r.taskId)) first.set(r.taskId, r);
    return [...first.values()];
  };

  const heartbeats = firstOf((r) => r.status === 'heartbeat');
  for (const [report, { verdict }] of await extendLeases(heartbeats, { store, clock, leaseGraceMs })) {
    verdicts.set(report, verdict);
  }

  const finals = firstOf((r) => r.status !== 'heartbeat');
  const outcomes = await Promise.all(
    finals.map(async (report): Promise<TaskOutcome | null> => {
      const lease = { id: report.taskId, leaseToken: report.leaseToken, startedAt: now, endedAt: now };
      if (report.status === 'succeeded') return { ...lease, kind: 'succeeded' };
      const task = await store.taskGet({ id: report.taskId });
      if (task?.state !== 'running' || task.leaseToken !== report.leaseToken) {
        verdicts.set(report, task ? 'stale' : 'not_found');
        return null;
      }
      const error = report.error ?? 'the worker reported a failure';
      return outcomeFor(
        task,
        { ok: false, retryable: report.retryable ?? true, error, retryAfterMs: report.retryAfterMs },
        now,
        now,
      );
    }),
  );
  const toApply = outcomes.filter((o): o is TaskOutcome => o !== null);
  let settled = 0;
  if (toApply.length > 0) {
    const applied = new Map((await store.taskComplete({ outcomes: toApply })).map((r) => [r.id, r.applied]));
    for (const report of finals) {
      if (verdicts.has(report)) continue;
      verdicts.set(report, applied.get(report.taskId) ? 'applied' : 'stale');
      if (applied.get(report.taskId)) settled++;
    }
  }
  // Later reports for a task already reported in this batch changed nothing.
  return { verdicts: reports.map((r) => verdicts.get(r) ?? 'stale'), settled };
}

/**
 * Heartbeats: each lease still held is extended to the task's timeout plus the grace from now.
 * Returns each report's verdict and, when applied, when its lease now ends.
 */
export async function extendLeases(
  heartbeats: WorkerReport[],
  { store, leaseGraceMs }: WorkerReportContext,
): Promise<Map<WorkerReport, { verdict: ReportVerdict; leaseExpiresAt: number | null }>> {
  const answers = new Map<WorkerReport, { verdict: ReportVerdict; leaseExpiresAt: number | null }>();
  if (heartbeats.length === 0) return answers;
  const leases = await Promise.all(
    heartbeats.map(async (report) => {
      const task = await store.taskGet({ id: report.taskId });
      if (!task) answers.set(report, { verdict: 'not_found', leaseExpiresAt: null });
      return task ? { id: task.id, leaseToken: report.leaseToken, extendMs: task.timeoutMs + leaseGraceMs } : null;
    }),
  );
  const results = new Map(
    (await store.taskHeartbeat({ leases: leases.filter((l) => l !== null) })).map((r) => [r.id, r]),
  );
  for (const report of heartbeats) {
    if (answers.has(report)) continue;
    const result = results.get(report.taskId);
    answers.set(report, {
      verdict: result?.applied ? 'applied' : 'stale',
      leaseExpiresAt: result?.leaseExpiresAt ?? null,
    });
  }
  return answers;
}
