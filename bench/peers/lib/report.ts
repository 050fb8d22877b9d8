/** The printed tables (one per scenario) and the ratio Punctual / best peer. */
import { fmtInt, fmtMs } from '../../lib/stats.ts';
import { isPunctual, type Profile } from './harness.ts';

export interface Run {
  system: string;
  profile: Profile;
  scenario: string;
  result?: Record<string, unknown>;
  error?: string;
}

// biome-ignore lint/suspicious/noExplicitAny: the raw results are JSON, read loosely for display
type R = Record<string, any>;

function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const ms = (n: unknown) => (typeof n === 'number' && Number.isFinite(n) ? fmtMs(n) : '—');
const int = (n: unknown) => (typeof n === 'number' && Number.isFinite(n) ? fmtInt(n) : '—');

/** The row cells of one run, per scenario. */
export function cells(run: Run, caps: Record<string, Partial<Record<Profile, string>>>): string[] {
  const r = run.result as R | undefined;
  if (!r) return [`failed: ${(run.error ?? '').slice(0, 100)}`];
  switch (run.scenario) {
    case 'ingest':
      return [
        int(r.batch?.perSecond),
        int(r.single?.perSecond),
        `${int(r.single?.count)} of ${int(r.single?.of)} in ≤ ${int(r.single?.capMs / 1000)} s`,
      ];
    case 'throughput':
      return [
        int(r.perSecond),
        r.complete ? 'all' : `${int(r.distinct)} of ${int(r.count)} in ${int(r.capMs / 1000)} s`,
        int(r.duplicates),
      ];
    case 'punctuality':
      return [
        ms(r.lateness?.p50),
        ms(r.lateness?.p99),
        ms(r.lateness?.max),
        int(r.missed),
        int(r.duplicates),
        r.enqueueFinishedBeforeFirstDue ? 'yes' : `no (${int(-r.enqueueFinishedMsBeforeFirstDue)} ms after)`,
      ];
    case 'recovery':
      return [
        r.recovered ? `${(r.recoveryMs / 1000).toFixed(1)} s` : `> ${int(r.capMs / 1000)} s`,
        int(r.lost),
        int(r.duplicates),
        int(r.inFlightAtKill),
        int(r.reruns),
        r.recovered ? '' : (caps[run.system]?.[run.profile] ?? caps[run.system]?.tuned ?? ''),
      ];
    default:
      return [];
  }
}

export const HEADERS: Record<string, string[]> = {
  ingest: ['batch tasks/s', 'single tasks/s', 'single done'],
  throughput: ['tasks/s (10-90 %)', 'done', 'duplicates'],
  punctuality: ['p50 ms', 'p99 ms', 'max ms', 'missed', 'duplicates', 'created in time'],
  recovery: ['all done after', 'lost', 'duplicates', 'in flight at kill', 're-run', 'why not (documented)'],
};

export function renderTables(runs: Run[], caps: Record<string, Partial<Record<Profile, string>>>): string {
  const out: string[] = [];
  for (const scenario of Object.keys(HEADERS)) {
    const these = runs.filter((r) => r.scenario === scenario);
    if (these.length === 0) continue;
    out.push(`## ${scenario}`);
    out.push(
      table(
        ['system', 'profile', ...HEADERS[scenario]!],
        these.map((r) => [r.system, r.profile, ...cells(r, caps)]),
      ),
    );
    out.push('');
  }
  return out.join('\n');
}

/** The headline figure of a run and whether higher is better. */
export function headline(run: Run): { value: number; higher: boolean; label: string }[] {
  const r = run.result as R | undefined;
  if (!r) return [];
  switch (run.scenario) {
    case 'ingest':
      return [
        { value: r.batch?.perSecond, higher: true, label: 'ingest batch tasks/s' },
        { value: r.single?.perSecond, higher: true, label: 'ingest single tasks/s' },
      ];
    case 'throughput':
      return [{ value: r.perSecond, higher: true, label: 'throughput tasks/s' }];
    case 'punctuality':
      return [
        { value: r.missed === 0 ? r.lateness?.p99 : Number.POSITIVE_INFINITY, higher: false, label: 'lateness p99 ms' },
      ];
    case 'recovery':
      return [{ value: r.recovered ? r.recoveryMs : Number.POSITIVE_INFINITY, higher: false, label: 'recovery ms' }];
    default:
      return [];
  }
}

export interface Ratio {
  metric: string;
  punctual: { who: string; value: number };
  bestPeer: { who: string; value: number } | null;
  /** Punctual / best peer for rates; best peer / Punctual for times: > 1 means Punctual is better. */
  advantage: number;
  each: { who: string; value: number; advantage: number }[];
}

export function ratioData(runs: Run[]): Ratio[] {
  const metrics = new Map<string, { who: string; value: number; higher: boolean; punctual: boolean }[]>();
  for (const run of runs) {
    for (const h of headline(run)) {
      if (typeof h.value !== 'number' || Number.isNaN(h.value)) continue;
      const list = metrics.get(h.label) ?? [];
      list.push({
        who: `${run.system}/${run.profile}`,
        value: h.value,
        higher: h.higher,
        punctual: isPunctual(run.system),
      });
      metrics.set(h.label, list);
    }
  }
  const out: Ratio[] = [];
  for (const [metric, list] of metrics) {
    const higher = list[0]!.higher;
    const better = (a: { value: number }, b: { value: number }) => (higher ? a.value > b.value : a.value < b.value);
    const pick = (xs: typeof list) =>
      xs.reduce<(typeof list)[number] | null>((best, x) => (!best || better(x, best) ? x : best), null);
    const punctual = pick(list.filter((x) => x.punctual));
    const peer = pick(list.filter((x) => !x.punctual));
    if (!punctual) continue;
    const adv = (v: number) => (!peer ? Number.NaN : higher ? v / peer.value : peer.value / v);
    out.push({
      metric,
      punctual: { who: punctual.who, value: punctual.value },
      bestPeer: peer ? { who: peer.who, value: peer.value } : null,
      advantage: adv(punctual.value),
      each: list.filter((x) => x.punctual).map((x) => ({ who: x.who, value: x.value, advantage: adv(x.value) })),
    });
  }
  return out;
}

export function ratios(runs: Run[]): string {
  const rows = ratioData(runs).map((r) => [
    r.metric,
    `${r.punctual.who} ${fmtNum(r.punctual.value)}`,
    r.bestPeer ? `${r.bestPeer.who} ${fmtNum(r.bestPeer.value)}` : '—',
    `${r.advantage.toFixed(2)}×`,
    r.each.map((e) => `${e.who} ${e.advantage.toFixed(2)}×`).join(', '),
  ]);
  return `## Punctual vs best peer (advantage > 1: Punctual better)\n${table(
    ['metric', 'Punctual (best)', 'best peer', 'advantage', 'each Punctual store'],
    rows,
  )}`;
}

function fmtNum(n: number): string {
  return Number.isFinite(n) ? (n >= 100 ? fmtInt(n) : fmtMs(n)) : '∞';
}
