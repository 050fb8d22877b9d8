import type { LookupAddress, LookupOptions } from 'node:dns';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Agent, request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type AllowList,
  checkUrlHost,
  guardedAgent,
  guardedLookup,
  parseAllowList,
  type Resolve,
  refusalReason,
  TargetRefusedError,
  targetRefusal,
} from '../../../src/targets/address-guard.ts';

const nothingAllowed = parseAllowList('');

describe('refusalReason', () => {
  it.each([
    ['0.0.0.0', 'unspecified'],
    ['0.255.1.2', 'unspecified'],
    ['10.1.2.3', 'private'],
    ['100.64.0.1', 'CGNAT (shared address space)'],
    ['100.127.255.254', 'CGNAT (shared address space)'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['169.254.1.1', 'link-local'],
    ['169.254.169.254', 'cloud metadata'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.0.0.8', 'reserved'],
    ['192.168.1.1', 'private'],
    ['198.18.0.1', 'reserved'],
    ['198.19.255.255', 'reserved'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456::1', 'unique-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['ff02::1', 'multicast'],
    ['fd00:ec2::254', 'cloud metadata'],
    ['100::1', 'reserved'],
    ['::7f00:1', 'reserved'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback'],
    ['0:0:0:0:0:ffff:a9fe:a9fe', 'IPv4-mapped cloud metadata'],
    ['::ffff:10.0.0.1', 'IPv4-mapped private'],
    ['64:ff9b::10.0.0.1', 'NAT64 private'],
    ['64:ff9b::a9fe:a9fe', 'NAT64 cloud metadata'],
    ['2002:7f00:1::', '6to4 loopback'],
  ])('refuses %s as %s', (address, reason) => {
    expect(refusalReason(address)).toBe(reason);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '93.184.215.14',
    '100.63.255.255', // just below CGNAT
    '100.128.0.0', // just above
    '172.15.255.255',
    '172.32.0.0',
    '169.253.255.255',
    '223.255.255.255',
    '2606:4700:4700::1111',
    '2001:4860:4860::8888',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2002:808:808::',
  ])('lets the public address %s through', (address) => {
    expect(refusalReason(address)).toBeNull();
  });

  it('refuses what is not an IP address', () => {
    expect(refusalReason('localhost')).toBe('not an IP address');
    expect(refusalReason('0177.0.0.1')).toBe('not an IP address');
  });
});

describe('checkUrlHost', () => {
  it('sees the address the URL parser makes of odd spellings', () => {
    expect(new URL('http://2130706433/').hostname).toBe('127.0.0.1');
    expect(new URL('http://0177.0.0.1/').hostname).toBe('127.0.0.1');
    expect(new URL('http://0x7f.1/').hostname).toBe('127.0.0.1');
    expect(new URL('http://[::ffff:127.0.0.1]/').hostname).toBe('[::ffff:7f00:1]');
  });

  it.each([
    ['http://2130706433/', '127.0.0.1 (loopback)'],
    ['http://0177.0.0.1/', '127.0.0.1 (loopback)'],
    ['http://0x7f.1/', '127.0.0.1 (loopback)'],
    ['http://[::ffff:127.0.0.1]/', '::ffff:7f00:1 (IPv4-mapped loopback)'],
    ['http://[::1]/', '::1 (loopback)'],
    ['http://169.254.169.254/latest/meta-data', '169.254.169.254 (cloud metadata)'],
    ['https://10.0.0.5:8443/hook', '10.0.0.5 (private)'],
  ])('refuses %s', (url, refused) => {
    expect(() => checkUrlHost(new URL(url), nothingAllowed)).toThrow(
      `webhook target ${refused}: refused; allow it with PUNCTUAL_ALLOW_PRIVATE_TARGETS`,
    );
  });

  it('throws an error the webhook target can recognise', () => {
    let thrown: unknown;
    try {
      checkUrlHost(new URL('http://127.0.0.1/'), nothingAllowed);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(TargetRefusedError);
    expect(thrown).toMatchObject({ code: 'PUNCTUAL_TARGET_REFUSED', address: '127.0.0.1', reason: 'loopback' });
    expect(targetRefusal(new Error('wrapped', { cause: thrown }))).toBe(thrown);
    expect(targetRefusal(new Error('other'))).toBeNull();
  });

  it('leaves public addresses, allowed ranges and host names (checked at lookup) alone', () => {
    expect(() => checkUrlHost(new URL('http://8.8.8.8/'), nothingAllowed)).not.toThrow();
    expect(() => checkUrlHost(new URL('http://[2606:4700:4700::1111]/'), nothingAllowed)).not.toThrow();
    expect(() => checkUrlHost(new URL('http://localhost/'), nothingAllowed)).not.toThrow();
    const loopback = parseAllowList('127.0.0.0/8');
    expect(() => checkUrlHost(new URL('http://2130706433/'), loopback)).not.toThrow();
    expect(() => checkUrlHost(new URL('http://[::ffff:127.0.0.1]/'), loopback)).not.toThrow();
    expect(() => checkUrlHost(new URL('http://[::1]/'), loopback)).toThrow(TargetRefusedError);
  });
});

describe('parseAllowList', () => {
  it('allows nothing when unset or empty', () => {
    for (const list of [parseAllowList(undefined), parseAllowList(''), parseAllowList(' , ')]) {
      expect(list.allowsAddress('127.0.0.1')).toBe(false);
      expect(list.allowsHost('localhost')).toBe(false);
    }
  });

  it('reads CIDRs and bare addresses of both families', () => {
    const list = parseAllowList(' 10.0.0.0/8, 192.168.1.7 ,::1/128, fd00::/8, fe80::1 ');
    expect(list.allowsAddress('10.200.3.4')).toBe(true);
    expect(list.allowsAddress('11.0.0.1')).toBe(false);
    expect(list.allowsAddress('192.168.1.7')).toBe(true);
    expect(list.allowsAddress('192.168.1.8')).toBe(false);
    expect(list.allowsAddress('::1')).toBe(true);
    expect(list.allowsAddress('fd00:ec2::254')).toBe(true);
    expect(list.allowsAddress('fc00::1')).toBe(false);
    expect(list.allowsAddress('fe80::1%eth0')).toBe(true);
    expect(list.allowsAddress('fe80::2')).toBe(false);
    // The same host as 10.0.0.1, so the same answer.
    expect(list.allowsAddress('::ffff:10.0.0.1')).toBe(true);
    expect(list.allowsAddress('not-an-ip')).toBe(false);
  });

  it('reads host names exactly, case-insensitively, and *. for subdomains', () => {
    const list = parseAllowList('localhost,Receiver_1,*.Internal.test');
    expect(list.allowsHost('localhost')).toBe(true);
    expect(list.allowsHost('LOCALHOST.')).toBe(true);
    expect(list.allowsHost('receiver_1')).toBe(true);
    expect(list.allowsHost('a.localhost')).toBe(false);
    expect(list.allowsHost('hooks.internal.test')).toBe(true);
    expect(list.allowsHost('a.b.internal.test')).toBe(true);
    expect(list.allowsHost('internal.test')).toBe(false);
    expect(list.allowsHost('evilinternal.test')).toBe(false);
    expect(list.allowsAddress('127.0.0.1')).toBe(false);
  });

  it.each([
    '10.0.0.0/33',
    '::1/129',
    '10.0.0.0/8/8',
    '10.0.0.0/',
    '300.1.1.1',
    '0x7f.1',
    '10.1',
    'fe80::1%eth0',
    'not a host',
    'http://localhost',
    '*',
  ])('refuses the entry %s, naming the variable', (entry) => {
    expect(() => parseAllowList(`localhost,${entry}`)).toThrow(
      new RegExp(`^PUNCTUAL_ALLOW_PRIVATE_TARGETS: "${entry.replace(/[*.]/g, '\\$&')}" is not a valid`),
    );
  });
});

/** A resolver that answers from a script, one answer per call, and counts the calls. */
function scriptedResolver(...answers: string[][]): Resolve & { calls: number } {
  const resolve = async (hostname: string): Promise<LookupAddress[]> => {
    const answer = answers[Math.min(resolve.calls, answers.length - 1)] ?? [];
    resolve.calls += 1;
    if (hostname === 'missing.test') throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    return answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  resolve.calls = 0;
  return resolve;
}

interface LookupOutcome {
  err: NodeJS.ErrnoException | null;
  address: string | LookupAddress[];
  family?: number;
}

function lookupWith(
  allow: AllowList,
  resolve: Resolve,
  hostname: string,
  options: LookupOptions = {},
): Promise<LookupOutcome> {
  return new Promise((done) =>
    guardedLookup(allow, resolve)(hostname, options, (err, address, family) => done({ err, address, family })),
  );
}

describe('guardedLookup', () => {
  it('refuses a host that resolves to a private address', async () => {
    const { err } = await lookupWith(nothingAllowed, scriptedResolver(['10.0.0.7']), 'hooks.example.test');
    expect(err).toBeInstanceOf(TargetRefusedError);
    expect(err?.message).toBe(
      'webhook target hooks.example.test resolves to 10.0.0.7 (private): refused; allow it with PUNCTUAL_ALLOW_PRIVATE_TARGETS',
    );
  });

  it('refuses a host with a public and a private record, whichever comes first', async () => {
    for (const records of [
      ['93.184.215.14', '127.0.0.1'],
      ['2606:4700:4700::1111', '::1'],
    ]) {
      const { err } = await lookupWith(nothingAllowed, scriptedResolver(records), 'mixed.test', { all: true });
      expect(err).toMatchObject({ code: 'PUNCTUAL_TARGET_REFUSED', address: records[1] });
    }
  });

  it('hands back exactly the addresses it checked', async () => {
    const resolve = scriptedResolver(['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c']);
    expect(await lookupWith(nothingAllowed, resolve, 'example.test')).toEqual({
      err: null,
      address: '93.184.215.14',
      family: 4,
    });
    // Happy eyeballs (autoSelectFamily) asks for the whole list.
    expect(await lookupWith(nothingAllowed, resolve, 'example.test', { all: true })).toEqual({
      err: null,
      address: [
        { address: '93.184.215.14', family: 4 },
        { address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c', family: 6 },
      ],
      family: undefined,
    });
  });

  it('lets through a private address allowed by range or by host name', async () => {
    const byRange = await lookupWith(parseAllowList('10.0.0.0/8'), scriptedResolver(['10.0.0.7']), 'a.test');
    expect(byRange).toEqual({ err: null, address: '10.0.0.7', family: 4 });
    const byName = await lookupWith(
      parseAllowList('*.compose.test'),
      scriptedResolver(['172.18.0.3']),
      'db.compose.test',
    );
    expect(byName).toEqual({ err: null, address: '172.18.0.3', family: 4 });
    // Allowing one range does not open the others.
    const { err } = await lookupWith(
      parseAllowList('10.0.0.0/8'),
      scriptedResolver(['10.0.0.7', '169.254.169.254']),
      'a.test',
    );
    expect(err).toMatchObject({ reason: 'cloud metadata' });
  });

  it('passes on resolver errors and treats an empty answer as not found', async () => {
    const missing = await lookupWith(nothingAllowed, scriptedResolver([]), 'missing.test');
    expect(missing.err).toMatchObject({ code: 'ENOTFOUND' });
    const empty = await lookupWith(nothingAllowed, scriptedResolver([]), 'empty.test');
    expect(empty.err).toMatchObject({ code: 'ENOTFOUND', message: 'getaddrinfo ENOTFOUND empty.test' });
  });

  it('checks again on every lookup, so a rebinding answer is refused', async () => {
    const resolve = scriptedResolver(['93.184.215.14'], ['127.0.0.1']);
    const lookup = (): Promise<LookupOutcome> => lookupWith(nothingAllowed, resolve, 'rebind.test');
    expect(await lookup()).toEqual({ err: null, address: '93.184.215.14', family: 4 });
    expect((await lookup()).err).toMatchObject({ address: '127.0.0.1', reason: 'loopback' });
    expect(resolve.calls).toBe(2);
  });
});

describe('guardedAgent against a canary on loopback', () => {
  let canary: Server;
  let port: number;
  let connections: number;
  let hostHeaders: string[];
  const agents: Agent[] = [];

  beforeEach(async () => {
    connections = 0;
    hostHeaders = [];
    canary = createServer((req, res) => {
      hostHeaders.push(req.headers.host ?? '');
      res.end('reached');
    });
    canary.on('connection', () => {
      connections += 1;
    });
    canary.listen(0, '127.0.0.1');
    await once(canary, 'listening');
    port = (canary.address() as AddressInfo).port;
  });

  afterEach(async () => {
    await Promise.all(agents.splice(0).map((agent) => agent.destroy()));
    canary.closeAllConnections();
    await new Promise((resolve) => canary.close(resolve));
  });

  function agentFor(allow: AllowList, resolve?: Resolve): Agent {
    const agent = guardedAgent(allow, {}, resolve);
    agents.push(agent);
    return agent;
  }

  async function statusOf(url: string, dispatcher: Agent, reset = false): Promise<number> {
    const response = await request(url, { dispatcher, reset });
    await response.body.text();
    return response.statusCode;
  }

  const literalUrls = (): string[] => [
    `http://127.0.0.1:${port}/`,
    `http://2130706433:${port}/`,
    `http://0177.0.0.1:${port}/`,
    `http://[::ffff:127.0.0.1]:${port}/`,
  ];

  it('refuses loopback by name and by literal before connecting', async () => {
    const agent = agentFor(nothingAllowed);
    await expect(statusOf(`http://localhost:${port}/`, agent)).rejects.toThrow(
      'webhook target localhost resolves to 127.0.0.1 (loopback)',
    );
    for (const url of literalUrls()) {
      expect(() => checkUrlHost(new URL(url), nothingAllowed)).toThrow(TargetRefusedError);
      // The agent refuses literals on its own too, should a caller skip checkUrlHost.
      await expect(statusOf(url, agent)).rejects.toBeInstanceOf(TargetRefusedError);
    }
    // TLS connects through the same lookup.
    await expect(statusOf(`https://localhost:${port}/`, agent)).rejects.toBeInstanceOf(TargetRefusedError);
    expect(connections).toBe(0);
  });

  it('reaches the canary once loopback is allowed by range', async () => {
    const agent = agentFor(parseAllowList('127.0.0.0/8'));
    for (const url of literalUrls()) {
      expect(() => checkUrlHost(new URL(url), parseAllowList('127.0.0.0/8'))).not.toThrow();
      expect(await statusOf(url, agent)).toBe(200);
    }
    expect(connections).toBeGreaterThan(0);
  });

  it('reaches the canary once localhost is allowed by name, over TLS too', async () => {
    const agent = agentFor(parseAllowList('localhost'));
    expect(await statusOf(`http://localhost:${port}/`, agent)).toBe(200);
    expect(connections).toBe(1);
    // The canary speaks no TLS, so the handshake fails, but only after the guard let it connect.
    await expect(statusOf(`https://localhost:${port}/`, agent)).rejects.not.toBeInstanceOf(TargetRefusedError);
    expect(connections).toBe(2);
  });

  it('connects to the address it checked, without resolving the name again', async () => {
    const resolve = scriptedResolver(['127.0.0.1']);
    const agent = agentFor(parseAllowList('127.0.0.1'), resolve);
    // No DNS server knows pinned.test: the connection can only have gone to the checked address.
    expect(await statusOf(`http://pinned.test:${port}/`, agent)).toBe(200);
    expect(hostHeaders).toEqual([`pinned.test:${port}`]);
    expect(resolve.calls).toBe(1);
  });

  it('refuses a name with a public and a loopback record without connecting anywhere', async () => {
    const agent = agentFor(nothingAllowed, scriptedResolver(['93.184.215.14', '127.0.0.1']));
    await expect(statusOf(`http://mixed.test:${port}/`, agent)).rejects.toMatchObject({
      address: '127.0.0.1',
      reason: 'loopback',
    });
    expect(connections).toBe(0);
  });

  it('checks every new connection, so a name rebound to another address is refused', async () => {
    const resolve = scriptedResolver(['127.0.0.1'], ['127.0.0.2']);
    const agent = agentFor(parseAllowList('127.0.0.1'), resolve);
    // reset closes the connection after the response, so the next request needs a new one.
    expect(await statusOf(`http://rebind.test:${port}/`, agent, true)).toBe(200);
    await expect(statusOf(`http://rebind.test:${port}/`, agent)).rejects.toMatchObject({
      code: 'PUNCTUAL_TARGET_REFUSED',
      address: '127.0.0.2',
    });
    expect(resolve.calls).toBe(2);
    expect(connections).toBe(1);
  });
});
