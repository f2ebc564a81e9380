import bcrypt from 'bcryptjs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { Htpasswd, HtpasswdError, parseHtpasswd } from '../../src/auth/htpasswd.js';
import { parseProxyAuthorization, proxyAuthenticateHeader, ProxyAuthenticator } from '../../src/auth/proxy-auth.js';

// Low cost keeps the suite fast; the format is what matters here.
const alice = bcrypt.hashSync('wonderland', 4); // $2b$
const bob = bcrypt.hashSync('builder', 4).replace(/^\$2b\$/, '$2y$'); // as htpasswd -B writes it
const carol = bcrypt.hashSync('pässwörd:with:colons', 4).replace(/^\$2b\$/, '$2a$');
const FILE = `# users for aigate\nalice:${alice}\n\nbob:${bob}\r\ncarol:${carol}\n`;

const basic = (s: string) => `Basic ${Buffer.from(s, 'utf8').toString('base64')}`;
const stores: Htpasswd[] = [];
const store = (text = FILE, opts = {}) => {
  const s = Htpasswd.parse(text, 'users.htpasswd', opts);
  stores.push(s);
  return s;
};
afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
});

describe('parseHtpasswd', () => {
  it('reads bcrypt lines ($2y$, $2a$, $2b$), skipping comments, blank lines and CR', () => {
    const users = parseHtpasswd(FILE);
    expect([...users.keys()]).toEqual(['alice', 'bob', 'carol']);
    expect(users.get('bob')).toBe(bob);
  });

  it.each([
    ['dave:$apr1$abcdefgh$0123456789012345678901', 'users.htpasswd:1: user "dave" has Apache MD5 ($apr1$); only bcrypt hashes are accepted — recreate it with: htpasswd -B users.htpasswd dave'],
    ['dave:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=', 'users.htpasswd:1: user "dave" has SHA-1 ({SHA}); only bcrypt hashes are accepted — recreate it with: htpasswd -B users.htpasswd dave'],
    ['dave:plaintext', 'users.htpasswd:1: user "dave" has crypt or plain text; only bcrypt hashes are accepted — recreate it with: htpasswd -B users.htpasswd dave'],
    ['# c\ndave:$2y$10$tooshort', 'users.htpasswd:2: user "dave" has a malformed bcrypt hash; only bcrypt hashes are accepted — recreate it with: htpasswd -B users.htpasswd dave'],
    ['no-colon-here', 'users.htpasswd:1: expected user:hash'],
    [`alice:${alice}\nalice:${alice}`, 'users.htpasswd:2: user "alice" is listed twice'],
  ])('rejects %j with the line', (text, message) => {
    expect(() => parseHtpasswd(text, 'users.htpasswd')).toThrow(HtpasswdError);
    expect(() => parseHtpasswd(text, 'users.htpasswd')).toThrow(message);
  });

  it('never puts the hash in an error', () => {
    try {
      parseHtpasswd('dave:$apr1$SECRETSALT$hashhashhashhashhashha', 'f');
    } catch (err) {
      expect((err as Error).message).not.toContain('SECRETSALT');
    }
  });

  it('loads a file and reports a missing one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigate-htpasswd-'));
    writeFileSync(join(dir, 'users'), FILE);
    const s = Htpasswd.load(join(dir, 'users'));
    stores.push(s);
    expect(s.size).toBe(3);
    expect(() => Htpasswd.load(join(dir, 'nope'))).toThrow(`${join(dir, 'nope')}: file not found`);
  });
});

describe('Htpasswd.verify', () => {
  it('accepts the right password for each hash flavour and refuses wrong ones', async () => {
    const s = store();
    expect(await s.verify('alice', 'wonderland')).toBe(true);
    expect(await s.verify('bob', 'builder')).toBe(true);
    expect(await s.verify('carol', 'pässwörd:with:colons')).toBe(true);
    expect(await s.verify('alice', 'Wonderland')).toBe(false);
    expect(await s.verify('bob', 'wonderland')).toBe(false);
    expect(await s.verify('mallory', 'wonderland')).toBe(false);
    expect(await s.verify('alice', '')).toBe(false);
  });

  it('caches results: a keep-alive CONNECT storm costs one bcrypt', async () => {
    const s = store();
    const results = await Promise.all(Array.from({ length: 50 }, () => s.verify('alice', 'wonderland')));
    expect(results.every(Boolean)).toBe(true);
    expect(s.comparisons).toBe(1);
    expect(await s.verify('alice', 'wonderland')).toBe(true);
    expect(s.comparisons).toBe(1);
    // Failures are cached too, but per password.
    expect(await s.verify('alice', 'nope')).toBe(false);
    expect(await s.verify('alice', 'nope')).toBe(false);
    expect(s.comparisons).toBe(2);
  });

  it('expires cached results', async () => {
    let clock = 0;
    const s = store(FILE, { successTtlMs: 1000, failureTtlMs: 100, now: () => clock });
    await s.verify('alice', 'wonderland');
    await s.verify('alice', 'bad');
    clock = 500;
    await s.verify('alice', 'wonderland');
    await s.verify('alice', 'bad'); // failure expired
    expect(s.comparisons).toBe(3);
    clock = 2000;
    await s.verify('alice', 'wonderland');
    expect(s.comparisons).toBe(4);
  });

  it('runs bcrypt off the event loop', async () => {
    const slow = bcrypt.hashSync('correct horse', 11); // ~150 ms of bcrypt
    const s = store(`slow:${slow}\n`);
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    const started = performance.now();
    expect(await s.verify('slow', 'correct horse')).toBe(true);
    const took = performance.now() - started;
    h.disable();
    expect(took).toBeGreaterThan(50);
    expect(h.max / 1e6).toBeLessThan(took / 2);
  });
});

describe('parseProxyAuthorization', () => {
  it('parses Basic credentials, splitting at the first colon, as UTF-8', () => {
    expect(parseProxyAuthorization(basic('alice:wonder:land'))).toEqual({ user: 'alice', password: 'wonder:land' });
    expect(parseProxyAuthorization(`basic   ${Buffer.from('ümlaut:pw').toString('base64')}`)).toEqual({ user: 'ümlaut', password: 'pw' });
    expect(parseProxyAuthorization(basic('alice:'))).toEqual({ user: 'alice', password: '' });
    expect(parseProxyAuthorization([basic('a:b')])).toEqual({ user: 'a', password: 'b' });
  });

  it.each([undefined, '', 'Bearer abc', 'Basic', 'Basic !!!', 'Basic YWxpY2U=' /* no colon */, basic(':pw'), 'Basic YWJj' /* abc */, 'Digest username="a"'])(
    'returns null for %j',
    (h) => {
      expect(parseProxyAuthorization(h)).toBeNull();
    },
  );

  it('builds the challenge header', () => {
    expect(proxyAuthenticateHeader('aigate')).toBe('Basic realm="aigate", charset="UTF-8"');
  });
});

describe('ProxyAuthenticator', () => {
  const cfg = { required: true, realm: 'aigate' };

  it('names the user on valid credentials', async () => {
    const auth = new ProxyAuthenticator(cfg, store());
    expect(await auth.authenticate(basic('bob:builder'))).toEqual({ ok: true, user: 'bob' });
  });

  it('asks for credentials with a challenge when required and missing', async () => {
    const auth = new ProxyAuthenticator(cfg, store());
    expect(await auth.authenticate(undefined)).toMatchObject({ ok: false, reason: 'missing', challenge: 'Basic realm="aigate", charset="UTF-8"' });
  });

  it('refuses wrong or malformed credentials even when not required', async () => {
    const auth = new ProxyAuthenticator({ required: false, realm: 'aigate' }, store());
    expect(await auth.authenticate(undefined)).toEqual({ ok: true, user: null });
    expect(await auth.authenticate(basic('bob:wrong'))).toMatchObject({ ok: false, reason: 'invalid', user: 'bob' });
    expect(await auth.authenticate('Bearer x')).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('ignores credentials when there is no users file', async () => {
    const auth = new ProxyAuthenticator({ required: false, realm: 'aigate' }, null);
    expect(await auth.authenticate(basic('bob:whatever'))).toEqual({ ok: true, user: null });
    expect(() => new ProxyAuthenticator({ required: true, realm: 'aigate' }, null)).toThrow(/no users file/);
  });
});
