/**
 * A thin layer over the DynamoDB client: plain objects in and out (marshalled here), batches split
 * to DynamoDB's limits with their unprocessed parts retried, and conditional-check failures told
 * apart from real errors.
 */
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
  type ScanCommandInput,
  UpdateItemCommand,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { retryPause } from '../../core/backoff.ts';
import type { DynamoConfig } from './config.ts';
import type { Key } from './keys.ts';

export type Item = Record<string, unknown>;
type Values = Record<string, unknown>;

const BATCH_WRITE_MAX = 25;
const BATCH_GET_MAX = 100;
const UNPROCESSED_RETRIES = 8;
/** Parallel requests for one batch operation: enough to hide latency, few enough not to throttle. */
export const PARALLEL_REQUESTS = 16;

const MARSHALL = { removeUndefinedValues: true, convertClassInstanceToMap: false };

/** DynamoDB refuses an empty ExpressionAttributeValues map. */
function expressionValues(values: Values) {
  return Object.keys(values).length > 0 ? marshall(values, MARSHALL) : undefined;
}

export function isConditionFailed(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error as { name?: string })?.name === 'ConditionalCheckFailedException'
  );
}

export function makeClient(config: DynamoConfig): DynamoDBClient {
  const local = config.endpoint !== undefined;
  const missingCredentials = !process.env.AWS_ACCESS_KEY_ID && !process.env.AWS_PROFILE;
  return new DynamoDBClient({
    region: config.region,
    endpoint: config.endpoint,
    // A local server accepts any credentials: spare developers from inventing some.
    credentials: local && missingCredentials ? { accessKeyId: 'local', secretAccessKey: 'local' } : undefined,
    // A silent server must fail calls (the dispatcher retries), not hang them. The request
    // timeout is generous: a local emulator under load can take seconds to answer.
    requestHandler: { connectionTimeout: 2_000, requestTimeout: 30_000, throwOnRequestTimeout: true },
    maxAttempts: 3,
  });
}

/** Runs `fn` over `items` with at most `width` calls in flight; results in input order. */
export async function inParallel<T, R>(
  items: T[],
  width: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i] as T, i);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return results;
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Db {
  readonly client: DynamoDBClient;
  readonly table: string;

  constructor(client: DynamoDBClient, table: string) {
    this.client = client;
    this.table = table;
  }

  async get(key: Key): Promise<Item | null> {
    const { Item } = await this.client.send(
      new GetItemCommand({ TableName: this.table, Key: marshall(key), ConsistentRead: true }),
    );
    return Item ? unmarshall(Item) : null;
  }

  /** False when the condition did not hold (nothing was written). */
  async put(item: object, condition?: string, values?: Values, names?: Record<string, string>): Promise<boolean> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: marshall(item as Item, MARSHALL),
          ConditionExpression: condition,
          ExpressionAttributeValues: values ? marshall(values, MARSHALL) : undefined,
          ExpressionAttributeNames: names,
        }),
      );
      return true;
    } catch (error) {
      if (condition && isConditionFailed(error)) return false;
      throw error;
    }
  }

  /** The item after the update, or null when the condition did not hold. */
  async update(
    key: Key,
    update: string,
    values: Values,
    options: { condition?: string; names?: Record<string, string> } = {},
  ): Promise<Item | null> {
    try {
      const { Attributes } = await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: marshall(key),
          UpdateExpression: update,
          ConditionExpression: options.condition,
          ExpressionAttributeValues: marshall(values, MARSHALL),
          ExpressionAttributeNames: options.names,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes ? unmarshall(Attributes) : {};
    } catch (error) {
      if (options.condition && isConditionFailed(error)) return null;
      throw error;
    }
  }

  async delete(key: Key, condition?: string, values?: Values, names?: Record<string, string>): Promise<boolean> {
    try {
      await this.client.send(
        new DeleteItemCommand({
          TableName: this.table,
          Key: marshall(key),
          ConditionExpression: condition,
          ExpressionAttributeValues: values ? marshall(values, MARSHALL) : undefined,
          ExpressionAttributeNames: names,
        }),
      );
      return true;
    } catch (error) {
      if (condition && isConditionFailed(error)) return false;
      throw error;
    }
  }

  /** One page of a query (strongly consistent on the table, eventually on an index). */
  async query(input: Omit<QueryCommandInput, 'TableName' | 'ExpressionAttributeValues'> & { values: Values }) {
    const { values, ...rest } = input;
    const result = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        ConsistentRead: rest.IndexName === undefined,
        ...rest,
        ExpressionAttributeValues: expressionValues(values),
      }),
    );
    return { items: (result.Items ?? []).map((i) => unmarshall(i)), next: result.LastEvaluatedKey };
  }

  /** Every item a scan returns, page after page. */
  async scanAll(input: Omit<ScanCommandInput, 'TableName' | 'ExpressionAttributeValues'> & { values: Values }) {
    const { values, ...rest } = input;
    const items: Item[] = [];
    let start: ScanCommandInput['ExclusiveStartKey'];
    do {
      const page = await this.client.send(
        new ScanCommand({
          TableName: this.table,
          ConsistentRead: true,
          ...rest,
          ExpressionAttributeValues: expressionValues(values),
          ExclusiveStartKey: start,
        }),
      );
      items.push(...(page.Items ?? []).map((i) => unmarshall(i)));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** Unconditional puts and deletes, 25 per request, unprocessed ones retried with backoff. */
  async batchWrite(puts: object[], deletes: Key[] = []): Promise<void> {
    const requests: WriteRequest[] = [
      ...puts.map((item) => ({ PutRequest: { Item: marshall(item as Item, MARSHALL) } })),
      ...deletes.map((key) => ({ DeleteRequest: { Key: marshall(key) } })),
    ];
    await inParallel(chunks(requests, BATCH_WRITE_MAX), PARALLEL_REQUESTS, async (chunk) => {
      let pending = chunk;
      for (let retry = 0; pending.length > 0; retry++) {
        if (retry > UNPROCESSED_RETRIES) throw new Error(`DynamoDB left ${pending.length} writes unprocessed`);
        if (retry > 0) await pause(retryPause(retry, 25, 1_000));
        const { UnprocessedItems } = await this.client.send(
          new BatchWriteItemCommand({ RequestItems: { [this.table]: pending } }),
        );
        pending = UnprocessedItems?.[this.table] ?? [];
      }
    });
  }

  /** Strongly consistent reads of many items, 100 per request; absent items are simply missing. */
  async batchGet(keys: Key[]): Promise<Item[]> {
    const pages = await inParallel(chunks(keys, BATCH_GET_MAX), PARALLEL_REQUESTS, async (chunk) => {
      const found: Item[] = [];
      let pending = chunk.map((key) => marshall(key));
      for (let retry = 0; pending.length > 0; retry++) {
        if (retry > UNPROCESSED_RETRIES) throw new Error(`DynamoDB left ${pending.length} reads unprocessed`);
        if (retry > 0) await pause(retryPause(retry, 25, 1_000));
        const { Responses, UnprocessedKeys } = await this.client.send(
          new BatchGetItemCommand({ RequestItems: { [this.table]: { Keys: pending, ConsistentRead: true } } }),
        );
        found.push(...(Responses?.[this.table] ?? []).map((i) => unmarshall(i)));
        pending = UnprocessedKeys?.[this.table]?.Keys ?? [];
      }
      return found;
    });
    return pages.flat();
  }
}
