/**
 * Loads a user's handlers module (`--handlers ./handlers.js`) into a registry. Accepted shapes:
 *   export default { sendEmail: async (task) => {...} }
 *   export const handlers = { sendEmail: ... }
 *   export default (register) => { register('sendEmail', ...) }
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HandlerRegistry } from './handler.ts';
import type { TaskHandler } from './target.ts';

const SHAPES =
  "a default export or a named export 'handlers' that is an object { [taskName]: handler }, " +
  'or a default export that is a function (register) => void';

/** Registers every handler the module exports and returns their names. */
export async function loadHandlers(modulePath: string, registry: HandlerRegistry): Promise<string[]> {
  const path = resolve(process.cwd(), modulePath);
  const found = await stat(path).catch(() => null);
  if (!found?.isFile()) throw new Error(`handlers module not found: ${path}`);

  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(path).href);
  } catch (err) {
    throw new Error(`handlers module ${path} failed to load: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }

  const names: string[] = [];
  const register = (name: string, handler: TaskHandler): void => {
    registry.register(name, handler);
    names.push(name);
  };
  if (typeof mod.default === 'function') {
    await mod.default(register);
  } else {
    const table = mod.handlers ?? mod.default;
    if (!isPlainObject(table)) throw new Error(`handlers module ${path} exports no handlers: expected ${SHAPES}`);
    for (const [name, handler] of Object.entries(table)) register(name, handler as TaskHandler);
  }
  if (names.length === 0) throw new Error(`handlers module ${path} registers no handlers: expected ${SHAPES}`);
  return names;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
