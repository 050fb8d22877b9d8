/**
 * Markdown tables of a results file, for docs/benchmarks.md:
 * `node bench/peers/lib/markdown.ts bench/results/peers-<stamp>.json`.
 */
import { readFileSync } from 'node:fs';
import { cells, HEADERS, type Run, ratioData } from './report.ts';

const results = JSON.parse(readFileSync(process.argv[2]!, 'utf8'));
const runs: Run[] = results.runs;
const out: string[] = [];
for (const scenario of Object.keys(HEADERS)) {
  const these = runs.filter((r) => r.scenario === scenario);
  if (these.length === 0) continue;
  out.push(`### ${scenario}`, '');
  out.push(`| system | profile | ${HEADERS[scenario]!.join(' | ')} |`);
  out.push(`| --- | --- | ${HEADERS[scenario]!.map(() => '---').join(' | ')} |`);
  for (const r of these) {
    const name = r.system.startsWith('punctual') ? `**${r.system}**` : r.system;
    out.push(`| ${name} | ${r.profile} | ${cells(r, results.recoveryCaps).join(' | ')} |`);
  }
  out.push('');
}
out.push(
  '### ratios',
  '',
  '| metric | Punctual (best) | best peer | advantage | each Punctual store |',
  '| --- | --- | --- | --- | --- |',
);
for (const r of ratioData(runs)) {
  out.push(
    `| ${r.metric} | ${r.punctual.who} ${r.punctual.value.toFixed(1)} | ${r.bestPeer ? `${r.bestPeer.who} ${r.bestPeer.value.toFixed(1)}` : '—'} | ${r.advantage.toFixed(2)}× | ${r.each.map((e) => `${e.who} ${e.advantage.toFixed(2)}×`).join(', ')} |`,
  );
}
process.stdout.write(`${out.join('\n')}\n`);
