import { describe, expect, it } from 'vitest';
import { parseDynamoUrl } from '../../../src/store/dynamodb/config.ts';

describe('dynamodb store URL', () => {
  it('reads the table, region, endpoint, bucket and shards', () => {
    expect(
      parseDynamoUrl('dynamodb://punctual_tasks?region=eu-west-1&endpoint=http://127.0.0.1:8000&bucket=1h&shards=32'),
    ).toEqual({
      table: 'punctual_tasks',
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:8000',
      bucketMs: 3_600_000,
      shards: 32,
      shardLeases: true,
    });
  });

  it('defaults to one-minute buckets, 16 shards and shard leases on', () => {
    expect(parseDynamoUrl('dynamodb://tasks?region=us-east-1')).toMatchObject({
      bucketMs: 60_000,
      shards: 16,
      shardLeases: true,
      endpoint: undefined,
    });
  });

  it.each([
    ['dynamodb://?region=us-east-1', /must name a table/],
    ['dynamodb://ab', /must name a table/],
    ['dynamodb://tasks?bucket=7m', /bucket must be a duration .* divides a day evenly; got "7m"/],
    ['dynamodb://tasks?bucket=1w', /bucket must be a duration/],
    ['dynamodb://tasks?bucket=500', /bucket must be a duration/],
    ['dynamodb://tasks?shards=0', /shards must be a whole number from 1 to 1000; got "0"/],
    ['dynamodb://tasks?shards=2.5', /shards must be a whole number/],
    ['dynamodb://tasks?shard_leases=maybe', /shard_leases must be true or false/],
    ['dynamodb://tasks?endpoint=ftp://x', /endpoint must be http\(s\):\/\/host:port/],
    ['dynamodb://tasks?colour=blue', /unknown option "colour"/],
  ])('refuses %s', (url, message) => {
    expect(() => parseDynamoUrl(url)).toThrow(message);
  });
});
