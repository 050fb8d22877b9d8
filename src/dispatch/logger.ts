/** The logging surface Punctual needs; pino (Fastify's logger) satisfies it. */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

const noop = (): void => {};
export const silentLogger: Logger = { info: noop, warn: noop, error: noop, debug: noop };
