/** docs/errors.md documents every error code, with the status, type and title the API sends. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode, problemType } from '../../src/core/errors.ts';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

/** The table rows: | `CODE` | status | `type` | title | when | */
const rows = new Map(
  doc
    .split('\n')
    .map((line) =>
      /^\|\s*`(PUNCTUAL_[A-Z_]+)`\s*\|\s*(\d{3})\s*\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|$/.exec(line),
    )
    .filter((m) => m !== null)
    .map((m) => [m[1] as string, { status: Number(m[2]), type: m[3], title: m[4], when: m[5] ?? '' }]),
);

describe('docs/errors.md', () => {
  it('lists exactly the codes in ERROR_CODES', () => {
    expect([...rows.keys()].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it.each(Object.keys(ERROR_CODES) as ErrorCode[])('%s has its status, type and title, and says when', (code) => {
    const row = rows.get(code);
    expect(row, `${code} is missing from docs/errors.md`).toBeDefined();
    expect(row).toMatchObject({
      status: ERROR_CODES[code].status,
      type: problemType(code),
      title: ERROR_CODES[code].title,
    });
    expect(row?.when.length ?? 0).toBeGreaterThan(10);
  });
});
