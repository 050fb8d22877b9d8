/**
 * What a PostgreSQL store URL says: `postgres://user[:password]@host[:port]/database`
 * (`postgresql://` too), plus two options of ours in its query string — `schema` (default
 * `public`: every table lives in it) and `pool` (connections, default 10). Other query parameters
 * (sslmode, application_name…) go to the client untouched.
 */

export interface PostgresConfig {
  /** The URL without our options, for the client. */
  connectionString: string;
  schema: string;
  poolSize: number;
  /** The LISTEN/NOTIFY channel: one per schema, so stores in other schemas are not woken. */
  channel: string;
}

/** Pool connections give up connecting after this long: a dead server fails calls fast. */
export const CONNECT_TIMEOUT_MS = 2_000;
/** The server cancels a statement running longer than this (statement_timeout). */
export const STATEMENT_TIMEOUT_MS = 10_000;
/** The client gives up on an answer after this long (the server or the network went silent). */
export const QUERY_TIMEOUT_MS = STATEMENT_TIMEOUT_MS + 2_000;

const DEFAULT_POOL_SIZE = 10;
const CHANNEL_PREFIX = 'punctual_tasks:';
/**
 * Lower-case plain identifiers only, so the name reads the same quoted or not (search_path, SQL,
 * LISTEN); short enough that the channel stays within PostgreSQL's 63-byte identifier limit.
 */
const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]*$/;
const SCHEMA_MAX_LENGTH = 63 - CHANNEL_PREFIX.length;

export function parsePostgresUrl(url: string): PostgresConfig {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Never echo the URL: it may carry a password.
    throw new Error('The postgres store URL is not a valid URL: use postgres://user@host:port/database');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new Error(`The postgres store URL must start with postgres:// or postgresql://, got "${parsed.protocol}//"`);
  }
  const schema = parsed.searchParams.get('schema') ?? 'public';
  if (!SCHEMA_PATTERN.test(schema) || schema.length > SCHEMA_MAX_LENGTH) {
    throw new Error(
      `The postgres store URL's schema must be lower-case letters, digits and underscores, not starting with a digit, ` +
        `at most ${SCHEMA_MAX_LENGTH} characters; got "${schema}"`,
    );
  }
  const poolText = parsed.searchParams.get('pool');
  const poolSize = poolText === null ? DEFAULT_POOL_SIZE : Number(poolText);
  if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 1_000) {
    throw new Error(`The postgres store URL's pool must be a whole number from 1 to 1000; got "${poolText}"`);
  }
  parsed.searchParams.delete('schema');
  parsed.searchParams.delete('pool');
  return { connectionString: parsed.toString(), schema, poolSize, channel: `${CHANNEL_PREFIX}${schema}` };
}

/**
 * The settings each pool connection gets before its first use. Sent as SQL rather than as the
 * startup `options` parameter: PgBouncer drops that parameter (`ignore_startup_parameters`) or
 * refuses the connection, and a dropped search_path would put every table in the wrong schema.
 */
export function sessionSettingsSql(schema: string, statementTimeoutMs: number): string {
  return `SET search_path TO ${quoteIdentifier(schema)}; SET statement_timeout = ${statementTimeoutMs}`;
}

/** A schema or channel name, quoted as an SQL identifier (the pattern above admits no quote). */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
