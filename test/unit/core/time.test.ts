import { describe, expect, it } from 'vitest';
import { formatRfc3339, parseRfc3339 } from '../../../src/core/time.ts';

describe('parseRfc3339', () => {
  it('reads UTC and offset date-times to the millisecond', () => {
    expect(parseRfc3339('2026-12-01T10:05:00Z')).toBe(Date.UTC(2026, 11, 1, 10, 5));
    expect(parseRfc3339('2026-12-01T10:05:00.123Z')).toBe(Date.UTC(2026, 11, 1, 10, 5, 0, 123));
    expect(parseRfc3339('2026-12-01T12:05:00+02:00')).toBe(Date.UTC(2026, 11, 1, 10, 5));
    expect(parseRfc3339('2026-12-01T05:35:00-04:30')).toBe(Date.UTC(2026, 11, 1, 10, 5));
    expect(parseRfc3339('2026-12-01t10:05:00z')).toBe(Date.UTC(2026, 11, 1, 10, 5));
  });

  it('truncates sub-millisecond fractions', () => {
    expect(parseRfc3339('2026-12-01T10:05:00.123999Z')).toBe(Date.UTC(2026, 11, 1, 10, 5, 0, 123));
  });

  it('accepts a leap second as the last millisecond of its minute', () => {
    expect(parseRfc3339('2016-12-31T23:59:60Z')).toBe(Date.UTC(2016, 11, 31, 23, 59, 59, 999));
  });

  it.each([
    ['no offset', '2026-12-01T10:05:00'],
    ['date only', '2026-12-01'],
    ['not a date', 'tomorrow'],
    ['empty', ''],
    ['month 13', '2026-13-01T10:05:00Z'],
    ['February 30', '2026-02-30T10:05:00Z'],
    ['hour 24', '2026-12-01T24:00:00Z'],
    ['offset hour 24', '2026-12-01T10:00:00+24:00'],
    ['offset without colon', '2026-12-01T10:00:00+0200'],
    ['epoch number text', '1796119500000'],
  ])('rejects %s', (_label, text) => {
    expect(parseRfc3339(text)).toBeNull();
  });

  it('accepts February 29 in leap years only', () => {
    expect(parseRfc3339('2028-02-29T00:00:00Z')).not.toBeNull();
    expect(parseRfc3339('2027-02-29T00:00:00Z')).toBeNull();
  });

  it('round-trips through formatRfc3339', () => {
    const ms = Date.UTC(2026, 11, 1, 10, 5, 7, 89);
    expect(parseRfc3339(formatRfc3339(ms))).toBe(ms);
  });
});
