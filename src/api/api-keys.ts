/**
 * API keys: `Authorization: Bearer <key>` on every API request once keys are configured.
 *
 * - `PUNCTUAL_API_KEYS`: comma-separated keys (for a quick setup; they sit in the environment).
 * - `PUNCTUAL_API_KEYS_FILE`: one key per line as `<name> sha256:<hex of the key's SHA-256>`,
 *   optionally followed by `revoked`; `#` starts a comment. Only hashes are stored, so the file
 *   gives nothing away. The file is read again when it changes (checked at most once a second),
 *   so adding or revoking a key needs no restart. `punctual api-key NAME` makes a key and its line.
 *
 * Keys are compared as SHA-256 digests with timingSafeEqual, against every entry, so neither the
 * comparison nor the lookup depends on how much of a guess was right.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

export type KeyVerdict = { status: 'ok'; name: string } | { status: 'unknown' } | { status: 'revoked'; name: string };

interface KeyEntry {
  name: string;
  digest: Buffer;
  revoked: boolean;
}

const MIN_KEY_LENGTH = 24;
const RELOAD_CHECK_MS = 1_000;

export function digestOf(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** A new random key and the keys-file line that admits it. */
export function newApiKey(name: string): { key: string; line: string } {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new Error('an API key name is 1-64 letters, digits, ".", "_" or "-"');
  const key = `pk_${randomBytes(24).toString('base64url')}`;
  return { key, line: `${name} sha256:${digestOf(key).toString('hex')}` };
}

export class ApiKeys {
  private entries: KeyEntry[];
  private readonly file: string | undefined;
  private fileVersion = '';
  private lastCheck = 0;
  private readonly fromEnv: KeyEntry[];

  private constructor(fromEnv: KeyEntry[], file: string | undefined) {
    this.fromEnv = fromEnv;
    this.file = file;
    this.entries = fromEnv;
    if (file) this.reload(true);
  }

  /** The configured keys, or null when none are (the API is then open to whoever can reach it). */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): ApiKeys | null {
    const listed = (env.PUNCTUAL_API_KEYS ?? '')
      .split(',')
      .map((k) => k.trim())
      .filter((k) => k !== '');
    for (const key of listed) {
      if (key.length < MIN_KEY_LENGTH) {
        throw new Error(`PUNCTUAL_API_KEYS: every key must be at least ${MIN_KEY_LENGTH} characters`);
      }
    }
    const file = env.PUNCTUAL_API_KEYS_FILE || undefined;
    if (listed.length === 0 && !file) return null;
    const fromEnv = listed.map((key, i) => ({ name: `env-${i + 1}`, digest: digestOf(key), revoked: false }));
    return new ApiKeys(fromEnv, file);
  }

  check(presented: string): KeyVerdict {
    this.reloadIfChanged();
    const digest = digestOf(presented);
    let match: KeyEntry | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, digest) && !match) match = entry;
    }
    if (!match) return { status: 'unknown' };
    return match.revoked ? { status: 'revoked', name: match.name } : { status: 'ok', name: match.name };
  }

  private reloadIfChanged(): void {
    if (!this.file || Date.now() - this.lastCheck < RELOAD_CHECK_MS) return;
    this.reload(false);
  }

  /** At start a bad file stops the service; later, a bad edit keeps the keys already loaded. */
  private reload(strict: boolean): void {
    const file = this.file as string;
    this.lastCheck = Date.now();
    try {
      const stat = statSync(file);
      const version = `${stat.mtimeMs}:${stat.size}`;
      if (version === this.fileVersion) return;
      this.entries = [...this.fromEnv, ...parseKeysFile(readFileSync(file, 'utf8'))];
      this.fileVersion = version;
    } catch (error) {
      if (strict) throw new Error(`PUNCTUAL_API_KEYS_FILE ${file}: ${(error as Error).message}`);
    }
  }
}

export function parseKeysFile(text: string): KeyEntry[] {
  const entries: KeyEntry[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const match = /^([A-Za-z0-9._-]{1,64})\s+sha256:([0-9a-f]{64})(?:\s+(revoked))?$/.exec(line);
    if (!match) throw new Error(`line ${index + 1}: expected "<name> sha256:<64 hex digits> [revoked]"`);
    entries.push({
      name: match[1] as string,
      digest: Buffer.from(match[2] as string, 'hex'),
      revoked: match[3] === 'revoked',
    });
  });
  return entries;
}
