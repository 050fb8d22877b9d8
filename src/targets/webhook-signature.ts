/**
 * Webhook signatures: receivers check that a request comes from Punctual and is fresh.
 *
 *   punctual-timestamp: 1764558000
 *   punctual-signature: v1=<base64 HMAC-SHA256 of "<timestamp>.<body>">[, v1=<…>]
 *
 * Secrets are per namespace. During a rotation a namespace has two active secrets and every
 * request carries one signature per secret, so receivers may switch at their own pace. The
 * receiver's side is `verifySignature` in the client package (docs/webhooks.md has the recipe).
 */
import { createHmac } from 'node:crypto';

/** Secrets by namespace (`*`: every namespace without its own); the first signs first. */
export type WebhookSecrets = ReadonlyMap<string, readonly string[]>;

const MIN_SECRET_LENGTH = 16;
const MAX_ACTIVE_SECRETS = 2;

/**
 * `PUNCTUAL_WEBHOOK_SECRETS`: comma-separated `namespace=secret` entries; `*=secret` for every
 * namespace; a namespace listed twice has two active secrets (a rotation: new first).
 */
export function parseWebhookSecrets(text: string | undefined): WebhookSecrets {
  const secrets = new Map<string, string[]>();
  for (const entry of (text ?? '').split(',')) {
    const trimmed = entry.trim();
    if (trimmed === '') continue;
    const at = trimmed.indexOf('=');
    const namespace = trimmed.slice(0, at).trim();
    const secret = trimmed.slice(at + 1).trim();
    if (at <= 0 || namespace === '') {
      throw new Error('PUNCTUAL_WEBHOOK_SECRETS entries must be namespace=secret (or *=secret)');
    }
    if (secret.length < MIN_SECRET_LENGTH) {
      throw new Error(
        `PUNCTUAL_WEBHOOK_SECRETS: the secret for "${namespace}" must be at least ${MIN_SECRET_LENGTH} characters`,
      );
    }
    const list = secrets.get(namespace) ?? [];
    if (list.length === MAX_ACTIVE_SECRETS) {
      throw new Error(`PUNCTUAL_WEBHOOK_SECRETS: "${namespace}" has more than ${MAX_ACTIVE_SECRETS} active secrets`);
    }
    list.push(secret);
    secrets.set(namespace, list);
  }
  return secrets;
}

/** The signature headers for a request body, or none when the namespace has no secret. */
export function signatureHeaders(
  secrets: WebhookSecrets,
  namespace: string,
  body: string,
  nowMs: number = Date.now(),
): Record<string, string> {
  const active = secrets.get(namespace) ?? secrets.get('*');
  if (!active || active.length === 0) return {};
  const timestamp = String(Math.floor(nowMs / 1000));
  const signatures = active.map(
    (secret) => `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('base64')}`,
  );
  return { 'punctual-timestamp': timestamp, 'punctual-signature': signatures.join(', ') };
}
