/**
 * The table and its index: created by `punctual migrate` (never by `serve`, which checks them and
 * refuses to start without them: creating tables is a deployment decision, with IAM to match).
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceInUseException,
  ResourceNotFoundException,
} from '@aws-sdk/client-dynamodb';

/** Lists tasks in (scheduledAt, id) order, one partition per shard. */
export const LIST_INDEX = 'by_schedule';
const ACTIVE_WAIT_MS = 60_000;

export async function createTable(client: DynamoDBClient, table: string): Promise<void> {
  try {
    await client.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
          { AttributeName: 'list_shard', AttributeType: 'N' },
          { AttributeName: 'list_sk', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: LIST_INDEX,
            KeySchema: [
              { AttributeName: 'list_shard', KeyType: 'HASH' },
              { AttributeName: 'list_sk', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
      }),
    );
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error; // another node created it first
  }
  const deadline = Date.now() + ACTIVE_WAIT_MS;
  while ((await tableProblem(client, table)) !== null) {
    if (Date.now() > deadline) throw new Error(`DynamoDB table ${table} did not become ACTIVE within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Null when the table is ready; otherwise what is wrong with it, for a start-up error. */
export async function tableProblem(client: DynamoDBClient, table: string): Promise<string | null> {
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: table }));
    if (Table?.TableStatus !== 'ACTIVE') return `DynamoDB table ${table} is ${Table?.TableStatus ?? 'unknown'}`;
    const index = Table.GlobalSecondaryIndexes?.find((i) => i.IndexName === LIST_INDEX);
    if (!index) return `DynamoDB table ${table} has no ${LIST_INDEX} index`;
    if (index.IndexStatus !== undefined && index.IndexStatus !== 'ACTIVE') {
      return `DynamoDB index ${LIST_INDEX} of table ${table} is ${index.IndexStatus}`;
    }
    return null;
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return `DynamoDB table ${table} does not exist`;
    throw error;
  }
}
