/**
 * Webhook signatures end to end: the real webhook target signs what it sends to a real receiver,
 * and the client package's verifySignature accepts it — and refuses a stale timestamp, a changed
 * body, a wrong secret; during a rotation receivers holding either secret accept.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifySignature } from '../../../packages/client/src/index.ts';
import type { Task } from '../../../src/core/task.ts';
import { parseAllowList } from '../../../src/targets/address-guard.ts';
import { HttpWebhookTarget } from '../../../src/targets/http.ts';
import { parseWebhookSecrets, signatureHeaders } from '../../../src/targets/webhook-signature.ts';
import { type Receiver, startReceiver } from '../../helpers/http-receiver.ts';
import { makeTask } from '../../helpers/task-factory.ts';

const NEW_SECRET = 'whsec-new-0123456789abcdef';
const OLD_SECRET = 'whsec-old-0123456789abcdef';

/** The test receivers listen on loopback, which webhooks reach only when allowed. */
const LOCAL = { allowPrivate: parseAllowList('127.0.0.1') };

let receiver: Receiver;
beforeEach(async () => {
  receiver = await startReceiver();
});
afterEach(async () => {
  await receiver.close();
});

async function deliver(secrets: string, task: Partial<Task> = {}) {
  const target = new HttpWebhookTarget({ ...LOCAL, secrets: parseWebhookSecrets(secrets) });
  const result = await target.run(makeTask({ target: { type: 'http', url: `${receiver.url}/hook` }, ...task }), {
    attempt: 1,
    idempotencyKey: 'k',
    signal: new AbortController().signal,
  });
  expect(result).toEqual({ ok: true });
  const request = receiver.requests.at(-1);
  if (!request) throw new Error('nothing received');
  return {
    body: request.rawBody,
    timestamp: request.headers['punctual-timestamp'] as string | undefined,
    signature: request.headers['punctual-signature'] as string | undefined,
  };
}

describe('signed webhooks', () => {
  it('carry a signature the receiver verifies with its secret', async () => {
    const received = await deliver(`*=${NEW_SECRET}`);
    expect(received.signature).toMatch(/^v1=[A-Za-z0-9+/]+=*$/);
    expect(Math.abs(Number(received.timestamp) - Date.now() / 1000)).toBeLessThan(5);
    expect(verifySignature({ ...received, secret: NEW_SECRET })).toBe(true);
  });

  it('are refused with a wrong secret, a changed body, or a stale or missing timestamp', async () => {
    const received = await deliver(`*=${NEW_SECRET}`);
    expect(verifySignature({ ...received, secret: OLD_SECRET })).toBe(false);
    expect(verifySignature({ ...received, body: `${received.body} `, secret: NEW_SECRET })).toBe(false);
    const sixMinutesLater = Number(received.timestamp) * 1000 + 6 * 60_000;
    expect(verifySignature({ ...received, secret: NEW_SECRET, now: sixMinutesLater })).toBe(false);
    expect(verifySignature({ ...received, secret: NEW_SECRET, now: sixMinutesLater - 2 * 60_000 })).toBe(true);
    expect(verifySignature({ ...received, timestamp: undefined, secret: NEW_SECRET })).toBe(false);
    // A replay with a fresh timestamp but the old signature does not verify: the timestamp is signed.
    expect(
      verifySignature({ ...received, timestamp: String(Number(received.timestamp) + 1), secret: NEW_SECRET }),
    ).toBe(false);
  });

  it('during a rotation carry one signature per active secret: receivers on either verify', async () => {
    const received = await deliver(`default=${NEW_SECRET},default=${OLD_SECRET}`, { namespace: 'default' });
    expect(received.signature?.split(', ')).toHaveLength(2);
    expect(verifySignature({ ...received, secret: NEW_SECRET })).toBe(true);
    expect(verifySignature({ ...received, secret: OLD_SECRET })).toBe(true);
    expect(verifySignature({ ...received, secret: [OLD_SECRET, NEW_SECRET] })).toBe(true);
    expect(verifySignature({ ...received, secret: 'some-other-secret-value' })).toBe(false);
  });

  it('use the namespace secret before the catch-all, and are unsigned without one', async () => {
    const secrets = parseWebhookSecrets(`billing=${NEW_SECRET},*=${OLD_SECRET}`);
    const body = '{"x":1}';
    const billing = signatureHeaders(secrets, 'billing', body);
    const other = signatureHeaders(secrets, 'other', body);
    expect(verifySignature({ body, ...toOptions(billing), secret: NEW_SECRET })).toBe(true);
    expect(verifySignature({ body, ...toOptions(other), secret: OLD_SECRET })).toBe(true);
    expect(signatureHeaders(parseWebhookSecrets(`billing=${NEW_SECRET}`), 'other', body)).toEqual({});
    const unsigned = await deliver('');
    expect(unsigned.signature).toBeUndefined();
  });

  it.each([
    ['no equals sign', 'justasecret0123456789'],
    ['an empty namespace', `=${NEW_SECRET}`],
    ['a short secret', 'default=short'],
    ['three active secrets', `a=${NEW_SECRET},a=${OLD_SECRET},a=${NEW_SECRET}x`],
  ])('refuses a configuration with %s, naming the variable', (_, text) => {
    expect(() => parseWebhookSecrets(text)).toThrow(/PUNCTUAL_WEBHOOK_SECRETS/);
  });
});

function toOptions(headers: Record<string, string>) {
  return { timestamp: headers['punctual-timestamp'], signature: headers['punctual-signature'] };
}
