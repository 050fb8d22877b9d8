/**
 * What a DynamoDB store URL says:
 * `dynamodb://TABLE?region=us-east-1&endpoint=http://127.0.0.1:8000&bucket=1m&shards=16`.
 * - `region` (default AWS_REGION, else us-east-1) and `endpoint` (a local server; credentials then
 *   default to dummies when the environment has none).
 * - `bucket`: the time span of one schedule partition (`30s`, `1m`, `1h`, `1d`; default 1m).
 * - `shards`: write shards per bucket (default 16): a task's entries live in shard hash(id) mod N.
 * - `shard_leases`: `true` (default) splits the shards among the live nodes; `false` makes every
 *   node scan every shard (one node, or tests that play several nodes from one process).
 */

export interface DynamoConfig {
  table: string;
  region: string;
  endpoint: string | undefined;
  bucketMs: number;
  shards: number;
  shardLeases: boolean;
}

const TABLE_PATTERN = /^[A-Za-z0-9_.-]{3,255}$/;
const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const MIN_BUCKET_MS = 1_000;
const MAX_SHARDS = 1_000;

export function parseDuration(text: string, what: string): number {
  const match = /^(\d+)(s|m|h|d)$/.exec(text);
  const ms = match ? Number(match[1]) * (UNITS[match[2] as string] as number) : Number.NaN;
  if (!(ms >= MIN_BUCKET_MS) || 86_400_000 % ms !== 0) {
    throw new Error(
      `The dynamodb store URL's ${what} must be a duration such as 30s, 1m, 1h or 1d that divides a day evenly; got "${text}"`,
    );
  }
  return ms;
}

export function parseDynamoUrl(url: string): DynamoConfig {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('The dynamodb store URL is not a valid URL: use dynamodb://TABLE?region=REGION');
  }
  if (parsed.protocol !== 'dynamodb:') {
    throw new Error(`The dynamodb store URL must start with dynamodb://, got "${parsed.protocol}//"`);
  }
  const table = decodeURIComponent(parsed.hostname || parsed.pathname.replace(/^\/+/, ''));
  if (!TABLE_PATTERN.test(table)) {
    throw new Error(
      `The dynamodb store URL must name a table (3 to 255 letters, digits, _ . -): dynamodb://TABLE; got "${table}"`,
    );
  }
  const query = parsed.searchParams;
  const known = new Set(['region', 'endpoint', 'bucket', 'shards', 'shard_leases']);
  for (const key of query.keys()) {
    if (!known.has(key)) throw new Error(`The dynamodb store URL has an unknown option "${key}"`);
  }
  const endpoint = query.get('endpoint') ?? undefined;
  if (endpoint !== undefined && !/^https?:\/\/[^/]+\/?$/.test(endpoint)) {
    throw new Error(`The dynamodb store URL's endpoint must be http(s)://host:port; got "${endpoint}"`);
  }
  const shardsText = query.get('shards') ?? '16';
  const shards = Number(shardsText);
  if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS) {
    throw new Error(
      `The dynamodb store URL's shards must be a whole number from 1 to ${MAX_SHARDS}; got "${shardsText}"`,
    );
  }
  const leases = query.get('shard_leases') ?? 'true';
  if (leases !== 'true' && leases !== 'false') {
    throw new Error(`The dynamodb store URL's shard_leases must be true or false; got "${leases}"`);
  }
  return {
    table,
    region: query.get('region') ?? process.env.AWS_REGION ?? 'us-east-1',
    endpoint,
    bucketMs: parseDuration(query.get('bucket') ?? '1m', 'bucket'),
    shards,
    shardLeases: leases === 'true',
  };
}
