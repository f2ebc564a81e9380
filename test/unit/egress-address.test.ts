import { describe, expect, it } from 'vitest';
import {
  canonicalHost,
  classifyAddress,
  compileConnectTo,
  DestinationError,
  ipToBytes,
  isPrivateAddress,
  pinnedLookup,
  resolveDestination,
  type LookupAll,
} from '../../src/route/address.js';

describe('canonicalHost', () => {
  it.each([
    ['API.GitHub.com', 'api.github.com', 0],
    ['api.github.com.', 'api.github.com', 0],
    ['bücher.example', 'xn--bcher-kva.example', 0],
    ['127.0.0.1', '127.0.0.1', 4],
    ['127.1', '127.0.0.1', 4],
    ['0x7f.0.0.1', '127.0.0.1', 4],
    ['2130706433', '127.0.0.1', 4],
    ['[::1]', '::1', 6],
    ['::FFFF:127.0.0.1', '::ffff:7f00:1', 6],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1', 6],
    ['under_score.example.com', 'under_score.example.com', 0],
  ])('%s → %s', (input, host, ip) => {
    expect(canonicalHost(input)).toEqual({ host, ip });
  });

  it.each(['', 'a..b', 'evil.com@good.com', 'a/b', 'a b', 'host:80', '-a.com', 'fe80::1%eth0', 'x'.repeat(64) + '.com', '1.2.3.4.5'])(
    'rejects %j',
    (input) => {
      expect(canonicalHost(input)).toBeNull();
    },
  );
});

describe('ipToBytes', () => {
  it('encodes v4, v6 and v6 with a dotted tail', () => {
    expect(ipToBytes('10.1.2.3')?.toString('hex')).toBe('0a010203');
    expect(ipToBytes('::1')?.toString('hex')).toBe('00000000000000000000000000000001');
    expect(ipToBytes('2001:db8::8:800:200c:417a')?.toString('hex')).toBe('20010db80000000000080800200c417a');
    expect(ipToBytes('::ffff:192.168.1.1')?.toString('hex')).toBe('00000000000000000000ffffc0a80101');
    expect(ipToBytes('fe80::')?.toString('hex')).toBe('fe800000000000000000000000000000');
    expect(ipToBytes('nope')).toBeNull();
  });
});

describe('isPrivateAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private network'],
    ['172.16.0.1', 'private network'],
    ['172.31.255.255', 'private network'],
    ['192.168.1.1', 'private network'],
    ['169.254.169.254', 'link-local'], // cloud metadata
    ['100.64.0.1', 'shared address space (CGNAT)'],
    ['100.127.255.255', 'shared address space (CGNAT)'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.251', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['192.0.2.10', 'documentation'],
    ['198.18.0.1', 'reserved'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fc00::1', 'unique local (ULA)'],
    ['fd12:3456::1', 'unique local (ULA)'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'], // IPv4-mapped
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private network'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['64:ff9b::10.0.0.1', 'private network'], // NAT64
    ['2002:c0a8:0101::1', 'private network'], // 6to4 of 192.168.1.1
    ['::127.0.0.1', 'reserved'], // IPv4-compatible
    ['2001:db8::1', 'documentation'],
    ['not an ip', 'reserved'],
  ])('%s is %s', (ip, cls) => {
    expect(classifyAddress(ip)).toBe(cls);
    expect(isPrivateAddress(ip)).toBe(true);
  });

  it.each(['8.8.8.8', '1.1.1.1', '140.82.112.3', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8', '64:ff9b::8.8.8.8', '2002:0808:0808::1'])(
    '%s is public',
    (ip) => {
      expect(classifyAddress(ip)).toBeNull();
      expect(isPrivateAddress(ip)).toBe(false);
    },
  );
});

function fakeDns(table: Record<string, string[]>): LookupAll & { calls: string[] } {
  const calls: string[] = [];
  const fn = async (name: string) => {
    calls.push(name);
    const answers = table[name];
    if (!answers) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(fn, { calls });
}

describe('resolveDestination', () => {
  const dns = fakeDns({
    'api.example.com': ['93.184.216.34', '2606:2800:220:1::1'],
    'internal.example.com': ['127.0.0.1'],
    'mixed.example.com': ['93.184.216.34', '10.0.0.7'],
    'upstream.test': ['10.9.9.9'],
  });

  it('returns the first checked address for a public name', async () => {
    const d = await resolveDestination('API.example.com.', 443, { denyPrivateAddresses: true, lookup: dns });
    expect(d).toMatchObject({ host: 'api.example.com', address: '93.184.216.34', family: 4, port: 443, via: 'dns' });
    expect(d.addresses).toHaveLength(2);
  });

  it('denies a name that resolves to a private address, naming both', async () => {
    const p = resolveDestination('internal.example.com', 443, { denyPrivateAddresses: true, lookup: dns });
    await expect(p).rejects.toBeInstanceOf(DestinationError);
    await expect(p).rejects.toMatchObject({ reason: 'private-address', address: '127.0.0.1' });
    await expect(p).rejects.toThrow(/^internal\.example\.com resolves to 127\.0\.0\.1, a private address \(loopback\)/);
  });

  it('denies when any one of several answers is private', async () => {
    await expect(resolveDestination('mixed.example.com', 443, { denyPrivateAddresses: true, lookup: dns })).rejects.toMatchObject({
      reason: 'private-address',
      address: '10.0.0.7',
    });
  });

  it('allows private answers when the check is off', async () => {
    const d = await resolveDestination('internal.example.com', 443, { denyPrivateAddresses: false, lookup: dns });
    expect(d.address).toBe('127.0.0.1');
  });

  it('lets connectTo name a private target, without resolving the original name', async () => {
    const lookup = fakeDns({});
    const d = await resolveDestination('api.githubcopilot.com', 443, {
      denyPrivateAddresses: true,
      connectTo: { 'API.githubcopilot.com:443': '127.0.0.1:9443' },
      lookup,
    });
    expect(d).toMatchObject({ host: 'api.githubcopilot.com', address: '127.0.0.1', port: 9443, via: 'connectTo' });
    expect(lookup.calls).toEqual([]);
  });

  it('resolves a connectTo target given as a name, and matches by port', async () => {
    const table = compileConnectTo({ 'api.anthropic.com:443': 'upstream.test:8443', '[::1]:8080': '[::1]:9090' });
    const d = await resolveDestination('api.anthropic.com', 443, { denyPrivateAddresses: true, connectTo: table, lookup: dns });
    expect(d).toMatchObject({ address: '10.9.9.9', port: 8443, via: 'connectTo' });
    const v6 = await resolveDestination('[::1]', 8080, { denyPrivateAddresses: true, connectTo: table, lookup: dns });
    expect(v6).toMatchObject({ address: '::1', port: 9090, family: 6 });
    // Same host, other port: no entry, so the private check applies.
    await expect(resolveDestination('::1', 443, { denyPrivateAddresses: true, connectTo: table, lookup: dns })).rejects.toMatchObject({
      reason: 'private-address',
    });
  });

  it('pins against DNS rebinding: the address returned is the one that was checked', async () => {
    let n = 0;
    const rebinding: LookupAll = async () => [{ address: n++ === 0 ? '93.184.216.34' : '127.0.0.1', family: 4 }];
    const d = await resolveDestination('rebind.example', 443, { denyPrivateAddresses: true, lookup: rebinding });
    expect(d.address).toBe('93.184.216.34');
    // A library dialling by name through pinnedLookup still gets the checked address.
    const lookup = pinnedLookup(d);
    const got = await new Promise<string>((resolve) =>
      (lookup as unknown as (h: string, o: object, cb: (e: unknown, a: string) => void) => void)('rebind.example', {}, (_e, a) => resolve(a)),
    );
    expect(got).toBe('93.184.216.34');
  });

  it('checks IP literals too', async () => {
    await expect(resolveDestination('127.0.0.1', 6379, { denyPrivateAddresses: true, lookup: dns })).rejects.toThrow(
      '127.0.0.1 is a private address (loopback)',
    );
    await expect(resolveDestination('0x7f.1', 6379, { denyPrivateAddresses: true, lookup: dns })).rejects.toMatchObject({ reason: 'private-address' });
    const d = await resolveDestination('8.8.8.8', 443, { denyPrivateAddresses: true, lookup: dns });
    expect(d).toMatchObject({ address: '8.8.8.8', via: 'literal' });
  });

  it('reports unresolvable and invalid names', async () => {
    await expect(resolveDestination('nxdomain.example', 443, { denyPrivateAddresses: true, lookup: dns })).rejects.toMatchObject({
      reason: 'unresolvable',
      message: 'cannot resolve nxdomain.example: ENOTFOUND',
    });
    await expect(resolveDestination('bad host', 443, { denyPrivateAddresses: true, lookup: dns })).rejects.toMatchObject({ reason: 'invalid-host' });
  });
});
