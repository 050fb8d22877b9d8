/** Percentiles and small formatting helpers. */

export interface Distribution {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
  min: number;
}

/** Nearest-rank percentile of sorted values (p in 0..100). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

export function distribution(values: ArrayLike<number>): Distribution {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    min: sorted.length > 0 ? (sorted[0] as number) : Number.NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted.length > 0 ? (sorted[sorted.length - 1] as number) : Number.NaN,
    mean: sorted.length > 0 ? sum / sorted.length : Number.NaN,
  };
}

/** Round for JSON output: keeps 3 decimals. */
export function round(value: number, decimals = 3): number {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

export function roundAll<T extends object>(obj: T, decimals = 3): T {
  return Object.fromEntries(
    Object.entries(obj).map(([k, v]) => [k, typeof v === 'number' ? round(v, decimals) : v]),
  ) as T;
}

export function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : String(n);
}

export function fmtMs(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}

/** A ticking stderr progress line for long phases. */
export function progress(label: string, read: () => string, everyMs = 2_000): () => void {
  const started = performance.now();
  const timer = setInterval(() => {
    const s = ((performance.now() - started) / 1000).toFixed(0);
    process.stderr.write(`  [${label}] ${s}s ${read()}\n`);
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}

export const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/** A Punctual logger that shows the first few warnings and errors on stderr (the rest are counted). */
export function benchLogger(label: string, limit = 5) {
  let shown = 0;
  let count = 0;
  const show = (level: string) => (obj: object, msg?: string) => {
    count++;
    if (shown >= limit) return;
    shown++;
    const err = (obj as { err?: unknown }).err;
    const detail = err instanceof Error ? `: ${err.message}` : '';
    note(`  [${label}] ${level}: ${msg ?? ''}${detail}${shown === limit ? ' (further messages not shown)' : ''}`);
  };
  const noop = () => {};
  return { info: noop, debug: noop, warn: show('warn'), error: show('error'), problems: () => count };
}
