/**
 * Verifying Punctual's webhook signatures on the receiving side:
 *
 *   punctual-timestamp: <unix seconds>
 *   punctual-signature: v1=<base64 HMAC-SHA256 of "<timestamp>.<raw body>">[, v1=<…>]
 *
 * A request is genuine when one `v1` signature matches one of your secrets (two during a
 * rotation) and its timestamp is within `toleranceSeconds` of now (default 5 minutes), which
 * stops a captured request from being replayed later. Verify the raw body, before parsing it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface VerifySignatureOptions {
  /** The request body exactly as received (a string, or the raw bytes). */
  body: string | Uint8Array;
  /** The `punctual-timestamp` header. */
  timestamp: string | null | undefined;
  /** The `punctual-signature` header. */
  signature: string | null | undefined;
  /** Your secret, or the list of secrets you accept (during a rotation). */
  secret: string | readonly string[];
  toleranceSeconds?: number;
  /** Epoch ms (default Date.now()). */
  now?: number;
}

export const DEFAULT_TOLERANCE_SECONDS = 300;

/** True when the request was signed by Punctual with one of the secrets, recently. */
export function verifySignature(options: VerifySignatureOptions): boolean {
  const { timestamp, signature } = options;
  if (!timestamp || !signature || !/^\d{1,12}$/.test(timestamp)) return false;
  const ageSeconds = Math.abs((options.now ?? Date.now()) / 1000 - Number(timestamp));
  if (ageSeconds > (options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS)) return false;
  const body = typeof options.body === 'string' ? Buffer.from(options.body) : Buffer.from(options.body);
  const offered = signature
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.startsWith('v1='))
    .map((part) => Buffer.from(part.slice(3), 'base64'));
  const secrets = typeof options.secret === 'string' ? [options.secret] : options.secret;
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest();
    // Constant time, so the comparison leaks nothing about how much of a forgery matched.
    if (offered.some((candidate) => candidate.length === expected.length && timingSafeEqual(candidate, expected))) {
      return true;
    }
  }
  return false;
}
