// trustedProxies (X-Forwarded-For from trusted peers only, right-most untrusted hop) and the
// identity keys' validation, and the key per-client limits count under (an IPv6 client by its /64).
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { budgetKey } from '../../src/pipeline/body-budget.js';
import { CACHED_CREDENTIAL_LENGTH, CredentialFingerprints, credentialFingerprint, requestCredential } from '../../src/pipeline/stages/credential.js';
import { bucketOwner } from '../../src/pipeline/stages/limit.js';
import { clientKey, ipToBytes } from '../../src/route/address.js';
import { TrustedProxies } from '../../src/server/client-identity.js';

describe('TrustedProxies.clientOf', () => {
  const trusted = new TrustedProxies(['10.0.0.0/8', '2001:db8::/32', '192.0.2.1']);

  it('ignores X-Forwarded-For from a peer that is not trusted', () => {
    expect(trusted.clientOf('203.0.113.5', '198.51.100.1')).toBe('203.0.113.5');
  });

  it('takes the right-most hop that is not a trusted proxy (what the client wrote to the left is not believed)', () => {
    expect(trusted.clientOf('10.0.0.1', '1.1.1.1, 198.51.100.1, 10.2.2.2')).toBe('198.51.100.1');
    expect(trusted.clientOf('192.0.2.1', ['1.1.1.1', '198.51.100.1'])).toBe('198.51.100.1');
    expect(trusted.clientOf('10.0.0.1', ' 2001:db8::9 , [2001:db9::1]')).toBe('2001:db9::1');
  });

  it('with only trusted hops, the left-most one is the client', () => {
    expect(trusted.clientOf('10.0.0.1', '10.3.3.3, 10.2.2.2')).toBe('10.3.3.3');
  });

  it('stops at a malformed hop, keeping the last good address', () => {
    expect(trusted.clientOf('10.0.0.1', 'evil, 10.2.2.2')).toBe('10.2.2.2');
    expect(trusted.clientOf('10.0.0.1', '198.51.100.1:443')).toBe('10.0.0.1');
    expect(trusted.clientOf('10.0.0.1', '')).toBe('10.0.0.1');
  });

  it('shows IPv4-mapped hops as IPv4, and matches them against IPv4 ranges', () => {
    expect(trusted.clientOf('10.0.0.1', '198.51.100.1, ::ffff:10.4.4.4')).toBe('198.51.100.1');
  });

  it('without trusted proxies, never reads the header', () => {
    expect(new TrustedProxies([]).clientOf('10.0.0.1', '198.51.100.1')).toBe('10.0.0.1');
  });
});

describe('identity configuration', () => {
  const base = { listen: { gateway: { port: 0 } } };

  it('defaults: no PROXY protocol, no trusted proxies, no client certificates, rate limit by ip', () => {
    const c = parseConfig(base);
    expect(c.listen.gateway).toEqual({ host: '0.0.0.0', port: 0, proxyProtocol: false });
    expect(c.trustedProxies).toEqual([]);
    expect(c.rateLimit.key).toBe('ip');
    expect(parseConfig({}).listen.gateway?.proxyProtocol).toBe(false);
  });

  it('clientCertificate defaults to optional, user from CN', () => {
    const c = parseConfig({ listen: { gateway: { port: 0, clientCertificate: { ca: 'ca.pem' } } } });
    expect(c.listen.gateway?.clientCertificate).toEqual({ ca: 'ca.pem', required: false, userField: 'CN' });
  });

  it.each([
    [{ trustedProxies: ['10.0.0.0/33'] }, 'trustedProxies[0]: "10.0.0.0/33": prefix length must be 0-32'],
    [{ trustedProxies: ['proxy.internal'] }, 'trustedProxies[0]: "proxy.internal" is not an IP address or CIDR'],
    [{ listen: { gateway: { port: 0, proxyProtocol: 'yes' } } }, 'listen.gateway.proxyProtocol'],
    [{ listen: { gateway: { port: 0, clientCertificate: { ca: 'ca.pem', userField: 'OU' } } } }, 'listen.gateway.clientCertificate.userField'],
    [{ listen: { forward: { port: 0, clientCertificate: { ca: 'ca.pem' } } } }, 'listen.forward'],
    [{ rateLimit: { key: 'apikey' } }, 'rateLimit.key'],
  ])('refuses %j', (raw, message) => {
    expect(() => parseConfig({ ...base, ...raw })).toThrow(message);
  });
});

describe('vendor credential and bucket owner', () => {
  it('takes a Bearer token, else x-api-key, api-key, x-goog-api-key; never Basic credentials', () => {
    expect(requestCredential({ authorization: 'Bearer sk-1' })).toBe('sk-1');
    expect(requestCredential({ authorization: 'bearer  sk-1 ' })).toBe('sk-1');
    expect(requestCredential({ authorization: 'Basic dTpw', 'x-api-key': 'k2' })).toBe('k2');
    expect(requestCredential({ 'api-key': 'k3', 'x-goog-api-key': 'k4' })).toBe('k3');
    expect(requestCredential({ 'x-goog-api-key': 'k4' })).toBe('k4');
    expect(requestCredential({ authorization: 'Basic dTpw' })).toBeUndefined();
    expect(requestCredential({ 'x-api-key': '  ' })).toBeUndefined();
  });

  it('fingerprints are 16 hex, keyed, and differ from key to key', () => {
    const k = Buffer.from('k');
    expect(credentialFingerprint(k, 'a')).toMatch(/^[0-9a-f]{16}$/);
    expect(credentialFingerprint(k, 'a')).toBe(credentialFingerprint(k, 'a'));
    expect(credentialFingerprint(k, 'a')).not.toBe(credentialFingerprint(k, 'b'));
    expect(credentialFingerprint(Buffer.from('other'), 'a')).not.toBe(credentialFingerprint(k, 'a'));
  });

  it('a stage remembers fingerprints, bounded: the same value as computed afresh, the first met forgotten first', () => {
    const k = Buffer.from('k');
    const cache = new CredentialFingerprints(k, 3);
    for (const c of ['a', 'b', 'a', 'c', 'd', 'a', 'e', 'b']) {
      expect(cache.of(c)).toBe(credentialFingerprint(k, c));
      expect(cache.size).toBeLessThanOrEqual(3);
    }
    expect(cache.size).toBe(3);
    // A credential longer than any vendor key is fingerprinted, not kept.
    const long = 'k'.repeat(CACHED_CREDENTIAL_LENGTH + 1);
    expect(cache.of(long)).toBe(credentialFingerprint(k, long));
    expect(cache.of('k'.repeat(CACHED_CREDENTIAL_LENGTH))).toBe(credentialFingerprint(k, 'k'.repeat(CACHED_CREDENTIAL_LENGTH)));
    expect(cache.size).toBe(3);
    expect(cache.has(long)).toBe(false);
    expect(cache.has('k'.repeat(CACHED_CREDENTIAL_LENGTH))).toBe(true);
    // Kept as the same characters, whatever they are (a lone surrogate included).
    const odd = 'sk-\ud800é\u00ff-end';
    expect(cache.of(odd)).toBe(credentialFingerprint(k, odd));
    expect(cache.has(odd)).toBe(true);
    // Another key: other fingerprints, never a value remembered under the first.
    const other = new CredentialFingerprints(Buffer.from('other'));
    expect(other.of('a')).toBe(credentialFingerprint(Buffer.from('other'), 'a'));
    expect(other.of('a')).not.toBe(cache.of('a'));
  });

  it('precedence: credential > user > ip under key: credential; user > ip under key: user; ip under key: ip', () => {
    const all = { ip: '10.0.0.1', user: 'alice', credential: '0123456789abcdef' };
    expect(bucketOwner('credential', all)).toBe('credential:0123456789abcdef');
    expect(bucketOwner('credential', { ip: '10.0.0.1', user: 'alice' })).toBe('user:alice');
    expect(bucketOwner('credential', { ip: '10.0.0.1', user: null })).toBe('ip:10.0.0.1');
    expect(bucketOwner('user', all)).toBe('user:alice');
    expect(bucketOwner('ip', all)).toBe('ip:10.0.0.1');
  });
});

describe('clientKey: what per-client limits count under', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['::FFFF:cb00:7107', '203.0.113.7'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
    ['2001:db8::5', '2001:db8::/64'],
    ['2001:0:0:5:1:2:3:4', '2001:0:0:5::/64'],
    ['0:0:0:1::9', '0:0:0:1::/64'],
    ['::1', '::/64'],
    ['fe80::1%eth0', 'fe80::/64'],
    ['', ''],
    ['not-an-address', 'not-an-address'],
    ['2001:db8:::1', '2001:db8:::1'],
    ['1::', '1::/64'],
    ['::', '::/64'],
    ['ABCD:EF01::1', 'abcd:ef01::/64'],
    ['2001:db8:0:0:1::', '2001:db8::/64'],
    ['0:0:0:0:0:ffff:1.2.3.4', '1.2.3.4'],
    ['64:ff9b::1.2.3.4', '64:ff9b::/64'],
  ])('%s → %s', (ip, key) => {
    expect(clientKey(ip)).toBe(key);
  });

  it('agrees with the address bytes for any spelling of any address', () => {
    let seed = 7;
    const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let i = 0; i < 2000; i++) {
      // Groups with runs of zeros, so that "::" lands anywhere.
      const groups = Array.from({ length: 8 }, () => (random(3) === 0 ? 0 : random(0x10000)));
      const full = groups.map((g) => g.toString(16).padStart(random(2) === 0 ? 4 : 1, '0')).join(':');
      const short = new URL(`http://[${full}]/`).hostname.slice(1, -1);
      const bytes = ipToBytes(full)!;
      const prefix = [0, 2, 4, 6].map((at) => bytes.readUInt16BE(at));
      while (prefix.length > 0 && prefix.at(-1) === 0) prefix.pop();
      const expected = `${prefix.map((g) => g.toString(16)).join(':')}::/64`;
      expect([clientKey(full), clientKey(short), clientKey(full.toUpperCase())]).toEqual([expected, expected, expected]);
    }
  });

  it('every address of one /64 is one rate-limit bucket and one body budget; the next /64 is another', () => {
    const a = { ip: '2001:db8:1:2::1', user: null };
    const b = { ip: '2001:db8:1:2:dead:beef:0:1', user: null };
    const c = { ip: '2001:db8:1:3::1', user: null };
    expect(bucketOwner('ip', a)).toBe('ip:2001:db8:1:2::/64');
    expect(bucketOwner('user', b)).toBe(bucketOwner('ip', a));
    expect(bucketOwner('ip', c)).not.toBe(bucketOwner('ip', a));
    expect(budgetKey(b)).toBe(budgetKey(a));
    expect(budgetKey(c)).not.toBe(budgetKey(a));
    expect(budgetKey({ ip: '::ffff:10.0.0.1', user: null })).toBe(budgetKey({ ip: '10.0.0.1', user: null }));
    expect(budgetKey({ ...a, user: 'alice' })).toBe('user:alice');
  });
});
