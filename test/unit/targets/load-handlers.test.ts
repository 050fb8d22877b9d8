import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HandlerRegistry } from '../../../src/targets/handler.ts';
import { loadHandlers } from '../../../src/targets/load-handlers.ts';
import { makeTask } from '../../helpers/task-factory.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'punctual-handlers-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Each module gets its own file: the ESM cache would hand back an earlier module at the same path. */
async function writeModule(name: string, source: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, source);
  return path;
}

const ctx = { attempt: 1, idempotencyKey: 'k', signal: new AbortController().signal };

describe('loadHandlers', () => {
  it('registers a default export object', async () => {
    const path = await writeModule(
      'default-object.mjs',
      `export default {
        email: async () => {},
        sms: () => { throw new Error('no signal'); },
      };`,
    );
    const registry = new HandlerRegistry();
    expect(await loadHandlers(path, registry)).toEqual(['email', 'sms']);
    expect(await registry.run(makeTask({ name: 'email' }), ctx)).toEqual({ ok: true });
    expect(await registry.run(makeTask({ name: 'sms' }), ctx)).toEqual({
      ok: false,
      retryable: true,
      error: 'no signal',
    });
  });

  it('registers a named handlers export, from a path relative to the working directory', async () => {
    const path = await writeModule('named.mjs', 'export const handlers = { report: () => {} };');
    const registry = new HandlerRegistry();
    expect(await loadHandlers(relative(process.cwd(), path), registry)).toEqual(['report']);
    expect(registry.has('report')).toBe(true);
  });

  it('calls a default export function with register', async () => {
    const path = await writeModule(
      'function.mjs',
      `export default (register) => {
        register('a', () => {});
        register('b', async () => {});
      };`,
    );
    const registry = new HandlerRegistry();
    expect(await loadHandlers(path, registry)).toEqual(['a', 'b']);
    expect(registry.has('a') && registry.has('b')).toBe(true);
  });

  it('says when the file is missing', async () => {
    const path = join(dir, 'missing.mjs');
    await expect(loadHandlers(path, new HandlerRegistry())).rejects.toThrow(`handlers module not found: ${path}`);
  });

  it('says when the module exports nothing usable', async () => {
    const empty = await writeModule('empty.mjs', 'export const unrelated = 1;\n');
    await expect(loadHandlers(empty, new HandlerRegistry())).rejects.toThrow(
      `handlers module ${empty} exports no handlers`,
    );
    const emptyObject = await writeModule('empty-object.mjs', 'export default {};\n');
    await expect(loadHandlers(emptyObject, new HandlerRegistry())).rejects.toThrow(
      `handlers module ${emptyObject} registers no handlers`,
    );
  });

  it('says which entry is not a function', async () => {
    const path = await writeModule('bad-entry.mjs', "export default { email: 'not a function' };");
    await expect(loadHandlers(path, new HandlerRegistry())).rejects.toThrow("handler for 'email' is not a function");
  });

  it('says when the module fails to load', async () => {
    const path = await writeModule('broken.mjs', 'export default {');
    await expect(loadHandlers(path, new HandlerRegistry())).rejects.toThrow(`handlers module ${path} failed to load`);
  });
});
