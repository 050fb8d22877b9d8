/**
 * The client package in a few lines: schedule a task 2 s ahead, watch it run, read its history.
 *
 *   npm start &                      # a service on http://127.0.0.1:8080
 *   node examples/client.ts          # (PUNCTUAL_URL, PUNCTUAL_API_KEY if keys are configured)
 *
 * The task targets a webhook on a tiny receiver this script starts on loopback; the service
 * reaches loopback only when allowed: PUNCTUAL_ALLOW_PRIVATE_TARGETS=127.0.0.1 npm start.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PunctualClient, TaskNotFoundError } from '../packages/client/src/index.ts';

const client = new PunctualClient({
  url: process.env.PUNCTUAL_URL ?? 'http://127.0.0.1:8080',
  apiKey: process.env.PUNCTUAL_API_KEY,
});

const receiver = createServer((req, res) => {
  console.log(`webhook received at ${new Date().toISOString()}: ${req.method} ${req.url}`);
  res.writeHead(204).end();
}).listen(0, '127.0.0.1');
await new Promise((resolve) => receiver.once('listening', resolve));
const { port } = receiver.address() as AddressInfo;

const task = await client.create({
  name: 'example-webhook',
  description: 'scheduled by examples/client.ts',
  scheduled_date: new Date(Date.now() + 2_000),
  target: { type: 'http', url: `http://127.0.0.1:${port}/hook` },
});
console.log(`scheduled ${task.id} for ${task.scheduled_date}`);

let current = await client.get(task.id);
while (current.state === 'scheduled' || current.state === 'running') {
  await new Promise((resolve) => setTimeout(resolve, 250));
  current = await client.get(task.id);
}
console.log(`ended ${current.state} after ${current.attempts} attempt(s)`, current.attempt_log);

await client.get('019a0000-0000-7000-8000-000000000000').catch((error: unknown) => {
  if (error instanceof TaskNotFoundError) console.log(`typed errors: ${error.code} (${error.status})`);
});
receiver.close();
