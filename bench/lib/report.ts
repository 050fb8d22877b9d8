/** The printed table, and what every results file records about the run. */
import { execFileSync } from 'node:child_process';

export interface Row {
  metric: string;
  value: string;
  /** e.g. "<= 10 ms"; with `pass`, the row gets PASS/MISS. */
  target?: string;
  pass?: boolean;
}

export interface ScenarioResult {
  scenario: string;
  rows: Row[];
  /** Everything measured, for the JSON file. */
  raw: Record<string, unknown>;
}

export function renderTable(results: ScenarioResult[]): string {
  const lines: string[][] = [['scenario', 'metric', 'value', 'target', '']];
  for (const r of results) {
    r.rows.forEach((row, i) => {
      const verdict = row.pass === undefined ? '' : row.pass ? 'PASS' : 'MISS';
      lines.push([i === 0 ? r.scenario : '', row.metric, row.value, row.target ?? '', verdict]);
    });
  }
  const widths = lines[0]!.map((_, c) => Math.max(...lines.map((l) => l[c]!.length)));
  const fmt = (l: string[]) =>
    l
      .map((cell, c) => (c === 2 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const out = [fmt(lines[0]!), rule];
  let first = true;
  for (const l of lines.slice(1)) {
    if (l[0] !== '' && !first) out.push('');
    first = false;
    out.push(fmt(l));
  }
  return out.join('\n');
}

/** The commit measured, and whether the working tree had changes (read-only git commands). */
export function sourceVersion(): { commit: string; changedFiles: number } | null {
  try {
    const git = (args: string[]) => execFileSync('git', args, { cwd: import.meta.dirname, encoding: 'utf8' }).trim();
    const changed = git(['status', '--porcelain']);
    return { commit: git(['rev-parse', 'HEAD']), changedFiles: changed === '' ? 0 : changed.split('\n').length };
  } catch {
    return null;
  }
}

/** A results file's time stamp: 2026-12-01T012858Z. */
export function stamp(date: Date): string {
  return date
    .toISOString()
    .replace(/:/g, '')
    .replace(/\.\d+Z$/, 'Z');
}
