/**
 * The webhook target's SSRF guard, through the real target: internal addresses in every spelling
 * are refused before any connection (a canary server on loopback counts connections), the
 * failure is permanent (no retry storm), a redirect to an internal address is never followed,
 * and an allow-listed range is reached (so these tests can fail).
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAllowList } from '../../../src/targets/address-guard.ts';
import { HttpWebhookTarget } from '../../../src/targets/http.ts';
import { makeTask } from '../../helpers/task-factory.ts';

interface Canary {
  server: Server;
  port: number;
  connections: number;
}

async function startCanary(host: string, respond?: (res: import('node:http').ServerResponse) => void): Promise<Canary> {
  const canary = { connections: 0 } as Canary;
  canary.server = createServer((_req, res) => (respond ? respond(res) : res.writeHead(204).end()));
  canary.server.on('connection', () => canary.connections++);
  canary.server.listen(0, host);
  await once(canary.server, 'listening');
  canary.port = (canary.server.address() as AddressInfo).port;
  return canary;
}

let canary: Canary;
beforeEach(async () => {
  canary = await startCanary('127.0.0.1');
});
afterEach(() => {
  canary.server.close();
});

function run(target: HttpWebhookTarget, url: string) {
  return target.run(makeTask({ target: { type: 'http', url } }), {
    attempt: 1,
    idempotencyKey: 'k',
    signal: AbortSignal.timeout(5_000),
  });
}

describe('the webhook SSRF guard', () => {
  it.each([
    ['loopback', (p: number) => `http://127.0.0.1:${p}/hook`],
    ['localhost', (p: number) => `http://localhost:${p}/hook`],
    ['a decimal IPv4', (p: number) => `http://2130706433:${p}/hook`],
    ['an octal IPv4', (p: number) => `http://0177.0.0.1:${p}/hook`],
    ['a hex IPv4', (p: number) => `http://0x7f.1:${p}/hook`],
    ['an IPv4-mapped IPv6', (p: number) => `http://[::ffff:127.0.0.1]:${p}/hook`],
    ['IPv6 loopback', (p: number) => `http://[::1]:${p}/hook`],
    ['the cloud metadata address', () => 'http://169.254.169.254/latest/meta-data/'],
    ['a private address', () => 'http://10.1.2.3/hook'],
    ['a CGNAT address', () => 'http://100.64.0.1/hook'],
    ['a unique-local IPv6', () => 'http://[fd00::1]/hook'],
  ])('refuses %s by default, permanently, without connecting', async (_, url) => {
    const result = await run(new HttpWebhookTarget(), url(canary.port));
    expect(result).toMatchObject({ ok: false, retryable: false });
    expect((result as { error: string }).error).toMatch(/refused; allow it with PUNCTUAL_ALLOW_PRIVATE_TARGETS/);
    expect(canary.connections).toBe(0);
  });

  it('reaches an allow-listed range, by address or by host name', async () => {
    expect(
      await run(
        new HttpWebhookTarget({ allowPrivate: parseAllowList('127.0.0.0/8') }),
        `http://2130706433:${canary.port}/`,
      ),
    ).toEqual({
      ok: true,
    });
    expect(
      await run(
        new HttpWebhookTarget({ allowPrivate: parseAllowList('localhost') }),
        `http://localhost:${canary.port}/`,
      ),
    ).toEqual({
      ok: true,
    });
    expect(canary.connections).toBe(2);
  });

  it('never follows a redirect to an internal address', async () => {
    const inner = await startCanary('127.0.0.2');
    // The "public" host (allowed here, as a stand-in) answers with a redirect into the network.
    const outer = await startCanary('127.0.0.1', (res) =>
      res.writeHead(302, { location: `http://127.0.0.2:${inner.port}/admin` }).end(),
    );
    try {
      const target = new HttpWebhookTarget({ allowPrivate: parseAllowList(`127.0.0.1`) });
      const result = await run(target, `http://127.0.0.1:${outer.port}/hook`);
      expect(result).toMatchObject({ ok: false, retryable: false });
      expect((result as { error: string }).error).toContain('redirects are not followed');
      expect(outer.connections).toBe(1);
      expect(inner.connections).toBe(0);
    } finally {
      inner.server.close();
      outer.server.close();
    }
  });
});
