import { describe, expect, it } from 'vitest';
import { HandlerRegistry } from '../../../src/targets/handler.ts';
import { PermanentError, type RunContext, type TaskHandler } from '../../../src/targets/target.ts';
import { makeTask } from '../../helpers/task-factory.ts';

function ctx(overrides: Partial<RunContext> = {}): RunContext {
  return { attempt: 1, idempotencyKey: 'key-1', signal: new AbortController().signal, ...overrides };
}

function registryWith(name: string, handler: TaskHandler): HandlerRegistry {
  const registry = new HandlerRegistry();
  registry.register(name, handler);
  return registry;
}

describe('HandlerRegistry.register', () => {
  it('registers a handler once per name', () => {
    const registry = registryWith('email', () => {});
    expect(registry.has('email')).toBe(true);
    expect(registry.has('sms')).toBe(false);
    expect(() => registry.register('email', () => {})).toThrow("a handler is already registered for 'email'");
  });

  it('rejects a handler that is not a function', () => {
    const registry = new HandlerRegistry();
    expect(() => registry.register('email', 'nope' as unknown as TaskHandler)).toThrow(
      "handler for 'email' is not a function",
    );
    expect(() => registry.register('', () => {})).toThrow('handler name must be a non-empty string');
    expect(registry.has('email')).toBe(false);
  });
});

describe('HandlerRegistry.run', () => {
  it('passes the task and context to the handler and succeeds when it returns', async () => {
    const task = makeTask({ name: 'email', payload: { to: 'a@b.c' } });
    const context = ctx({ attempt: 2 });
    const calls: [unknown, RunContext][] = [];
    const registry = registryWith('email', async (t, c) => {
      calls.push([t, c]);
    });
    expect(await registry.run(task, context)).toEqual({ ok: true });
    expect(calls).toEqual([[task, context]]);
  });

  it('fails for good on PermanentError, also from another copy of the class', async () => {
    const registry = registryWith('a', () => {
      throw new PermanentError('bad address');
    });
    expect(await registry.run(makeTask({ name: 'a' }), ctx())).toEqual({
      ok: false,
      retryable: false,
      error: 'bad address',
    });
    const foreign = Object.assign(new Error('gone'), { name: 'PermanentError' });
    registry.register('b', async () => {
      throw foreign;
    });
    expect(await registry.run(makeTask({ name: 'b' }), ctx())).toEqual({ ok: false, retryable: false, error: 'gone' });
  });

  it('retries on any other throw, sync or async, Error or not', async () => {
    const registry = new HandlerRegistry();
    registry.register('sync', () => {
      throw new Error('smtp down');
    });
    registry.register('async', async () => {
      throw new TypeError('x is undefined');
    });
    registry.register('string', () => Promise.reject('plain string'));
    registry.register('object', () => Promise.reject({ code: 7 }));
    const results = await Promise.all(
      ['sync', 'async', 'string', 'object'].map((name) => registry.run(makeTask({ name }), ctx())),
    );
    expect(results).toEqual([
      { ok: false, retryable: true, error: 'smtp down' },
      { ok: false, retryable: true, error: 'x is undefined' },
      { ok: false, retryable: true, error: 'plain string' },
      { ok: false, retryable: true, error: '{"code":7}' },
    ]);
  });

  it('fails for good when no handler is registered for the name', async () => {
    expect(await new HandlerRegistry().run(makeTask({ name: 'unknown' }), ctx())).toEqual({
      ok: false,
      retryable: false,
      error: "no handler registered for task name 'unknown' and the task has no target",
    });
  });

  it('gives up on a handler that outlives the signal and lets it settle alone', async () => {
    let finish = (): void => {};
    const handlerDone = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const registry = registryWith('slow', async () => {
      await handlerDone;
      throw new Error('late failure'); // must not surface as an unhandled rejection
    });
    const controller = new AbortController();
    const running = registry.run(makeTask({ name: 'slow' }), ctx({ signal: controller.signal }));
    controller.abort(new Error('timeout after 25 ms'));
    expect(await running).toEqual({ ok: false, retryable: true, error: 'timeout after 25 ms' });
    finish();
    await handlerDone;
  });

  it('names the task timeout when the signal carries no Error reason', async () => {
    const registry = registryWith('slow', () => new Promise(() => {}));
    const task = makeTask({ name: 'slow', timeoutMs: 30 });
    expect(await registry.run(task, ctx({ signal: AbortSignal.timeout(30) }))).toEqual({
      ok: false,
      retryable: true,
      error: 'timeout after 30 ms',
    });
  });

  it('does not call the handler when the signal has already fired', async () => {
    let called = false;
    const registry = registryWith('x', () => {
      called = true;
    });
    const result = await registry.run(makeTask({ name: 'x', timeoutMs: 10 }), ctx({ signal: AbortSignal.abort() }));
    expect(result).toEqual({ ok: false, retryable: true, error: 'timeout after 10 ms' });
    expect(called).toBe(false);
  });
});
