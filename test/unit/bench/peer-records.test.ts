import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readRecords } from '../../../bench/peers/lib/scenarios.ts';

const dir = mkdtempSync(join(tmpdir(), 'peer-records-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function recordFile(lines: string[]): string {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.records`);
  writeFileSync(file, lines.map((l) => `${l}\n`).join(''));
  return file;
}

describe('the peer benchmark record file', () => {
  it('counts start records apart from completion records', () => {
    const file = recordFile([
      '0 100 101.5',
      '1 100 102.25',
      '0 100 101.5 1101.5', // task 0 completed
      '1 100 150', // task 1 ran again (cut off by a kill)
      '1 100 150 1150',
    ]);
    const r = readRecords(file, 3);
    expect(r.lines).toBe(3);
    expect(r.distinct).toBe(2);
    expect(r.firstStart[0]).toBe(101.5);
    expect(r.firstStart[1]).toBe(102.25);
    expect(Number.isNaN(r.firstStart[2]!)).toBe(true);
    expect(r.completions).toBe(2);
    expect(r.distinctCompleted).toBe(2);
    expect(r.lastEnd).toBe(1150);
  });

  it('counts a task completed twice once among the distinct, and ignores torn or foreign lines', () => {
    const file = recordFile(['2 5 6', '2 5 6 10', '2 5 7', '2 5 7 12', '9 5 6', 'x 1 2', '1 5']);
    const r = readRecords(file, 3);
    expect(r.lines).toBe(2);
    expect(r.distinct).toBe(1);
    expect(r.completions).toBe(2);
    expect(r.distinctCompleted).toBe(1);
    expect(r.lastEnd).toBe(12);
  });

  it('reads a missing file as no records', () => {
    const r = readRecords(join(dir, 'absent.records'), 2);
    expect(r.lines).toBe(0);
    expect(r.completions).toBe(0);
    expect(Number.isNaN(r.lastEnd)).toBe(true);
  });
});
