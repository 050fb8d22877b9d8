import { describe, expect, it } from 'vitest';
import { isUuid, uuidv7 } from '../../../src/core/ids.ts';

describe('uuidv7', () => {
  it('is a version 7, variant 1 UUID carrying its millisecond', () => {
    const ms = Date.UTC(2026, 11, 1, 10, 5);
    const id = uuidv7(ms);
    expect(isUuid(id)).toBe(true);
    expect(id[14]).toBe('7');
    expect(['8', '9', 'a', 'b']).toContain(id[19]);
    expect(Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16)).toBe(ms);
  });

  it('sorts in creation order, within one millisecond too', () => {
    const ms = Date.now() + 10_000;
    const ids = Array.from({ length: 5_000 }, () => uuidv7(ms));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
