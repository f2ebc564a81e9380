// audit.syslog (SPEC §11): every audit line reaches a real rsyslog as an RFC 5424 message (octet
// counted on TCP, RFC 6587; one datagram on UDP) with the PRI of its decision, and lines written
// while the receiver is gone are delivered once it is back. TLS against a Node TLS listener with
// a generated CA (rsyslog's TLS needs the separate rsyslog-gnutls module).
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog, type AuditRecord } from '../../src/audit/log.js';
import { verifyAuditFiles } from '../../src/audit/verify.js';
import { configSchema } from '../../src/config/schema.js';
import { request } from 'undici';
import { startTestProxy, startVendors, testPki } from '../support/proxy.js';
import { githubToken } from '../support/secrets.js';

const RSYSLOGD = ['/usr/sbin/rsyslogd', '/sbin/rsyslogd'].find((p) => existsSync(p));
if (!RSYSLOGD) console.warn('rsyslogd not found (apt-get install rsyslog): the rsyslog tests are skipped');

function record(id: string, decision: AuditRecord['decision']): AuditRecord {
  return {
    time: new Date().toISOString(),
    event: 'request',
    id,
    mode: 'gateway',
    client: { ip: '127.0.0.1', user: 'alice' },
    route: 'openai',
    method: 'POST',
    host: 'api.openai.com',
    path: '/openai/chat/completions',
    status: decision === 'block' ? 403 : decision === 'error' ? 502 : 200,
    decision,
    reason: null,
    bytesIn: 10,
    bytesOut: 20,
    durationMs: 1.5,
    findings: [],
  };
}

async function freePort(kind: 'tcp' | 'udp'): Promise<number> {
  if (kind === 'udp') {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const { port } = s.address();
    await new Promise<void>((r) => s.close(r));
    return port;
  }
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

interface Rsyslog {
  dir: string;
  out: string;
  tcp: number;
  udp: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Received messages: `pri|hostname|app-name|procid|msgid|msg`. */
  received(): string[];
}

const running = new Set<ChildProcess>();
afterEach(() => {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
});

async function rsyslog(): Promise<Rsyslog> {
  const dir = mkdtempSync(join(tmpdir(), 'aigate-rsyslog-'));
  const out = join(dir, 'out.log');
  const tcp = await freePort('tcp');
  const udp = await freePort('udp');
  const conf = join(dir, 'rsyslog.conf');
  writeFileSync(
    conf,
    [
      `global(workDirectory="${dir}")`,
      'module(load="imtcp")',
      'module(load="imudp")',
      `input(type="imtcp" port="${tcp}" address="127.0.0.1")`,
      `input(type="imudp" port="${udp}" address="127.0.0.1")`,
      'template(name="t" type="string" string="%pri%|%hostname%|%app-name%|%procid%|%msgid%|%msg%\\n")',
      `*.* action(type="omfile" file="${out}" template="t")`,
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  const r: Rsyslog = {
    dir,
    out,
    tcp,
    udp,
    async start() {
      child = spawn(RSYSLOGD!, ['-n', '-f', conf, '-i', join(dir, 'rsyslogd.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
      running.add(child);
      // Ready once it accepts TCP connections.
      await expect
        .poll(
          () =>
            new Promise<boolean>((resolve) => {
              const s = createServer();
              s.once('error', () => resolve(true)); // EADDRINUSE: rsyslogd holds the port
              s.listen(tcp, '127.0.0.1', () => s.close(() => resolve(false)));
            }),
          { timeout: 10_000, interval: 50 },
        )
        .toBe(true);
    },
    async stop() {
      const c = child!;
      const exited = new Promise((resolve) => c.once('exit', resolve));
      c.kill('SIGTERM');
      await exited;
      running.delete(c);
    },
    received: () => (existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean) : []),
  };
  await r.start();
  return r;
}

/** A GitHub classic token with a valid checksum, made at run time (never a literal in the repo). */
const fileLines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean);

describe.skipIf(!RSYSLOGD)('audit.syslog against rsyslog', () => {
  it('tcp: each line arrives whole, as written to the file, with the PRI of its decision (local3: allow 158, block 156, error 155)', async () => {
    const rs = await rsyslog();
    const file = join(rs.dir, 'audit.log');
    const log = new AuditLog({ file, stdout: false, syslog: { url: `tcp://127.0.0.1:${rs.tcp}`, facility: 'local3' } });
    log.write(record('r1', 'allow'));
    log.write(record('r2', 'block'));
    log.write(record('r3', 'error'));
    log.close();
    await expect.poll(() => rs.received().length, { timeout: 10_000 }).toBe(4);
    const written = fileLines(file);
    const got = rs.received().map((l) => l.split('|'));
    expect(got.map((g) => g[0])).toEqual(['158', '156', '155', '158']);
    expect(got.every((g) => g[2] === 'aigate' && g[3] === String(process.pid) && g[4] === 'audit')).toBe(true);
    // The MSG is the line as written, so what the receiver kept verifies like the file.
    expect(got.map((g) => g.slice(5).join('|'))).toEqual(written);
    writeFileSync(join(rs.dir, 'received.log'), got.map((g) => `${g.slice(5).join('|')}\n`).join(''));
    expect((await verifyAuditFiles([join(rs.dir, 'received.log')], { key: null, liveSeconds: 0, allowUnended: false })).ok).toBe(true);
  });

  it('udp: one datagram per line', async () => {
    const rs = await rsyslog();
    const log = new AuditLog({ file: null, stdout: false, syslog: { url: `udp://127.0.0.1:${rs.udp}`, facility: 'auth' } });
    log.write(record('u1', 'deny'));
    log.write(record('u2', 'allow'));
    log.flush();
    await expect.poll(() => rs.received().length, { timeout: 10_000 }).toBe(2);
    expect(rs.received().map((l) => l.split('|')[0])).toEqual(['36', '38']); // auth (4) × 8 + warning / info
    expect(JSON.parse(rs.received()[0]!.split('|').slice(5).join('|'))).toMatchObject({ id: 'u1', decision: 'deny', seq: 0 });
    log.close();
  });

  it('the receiver goes away and comes back: the sink reports failing (deny refuses traffic), keeps its lines, reconnects and delivers them', async () => {
    const rs = await rsyslog();
    const errors: string[] = [];
    const recovered: number[] = [];
    const log = new AuditLog(
      { file: null, stdout: false, onWriteError: 'deny', syslog: { url: `tcp://127.0.0.1:${rs.tcp}`, facility: 'local0' } },
      { onError: (_e, sink) => errors.push(sink), onRecovered: (sink, dropped) => sink === 'syslog' && recovered.push(dropped) },
    );
    log.write(record('before', 'allow'));
    log.flush();
    await expect.poll(() => rs.received().length, { timeout: 10_000 }).toBe(1);

    await rs.stop();
    await expect.poll(() => log.isFailing(), { timeout: 10_000 }).toBe(true);
    expect(errors).toEqual(['syslog']);
    expect(log.refusesTraffic()).toBe(true);
    for (let i = 0; i < 5; i++) log.write(record(`while-down-${i}`, 'allow'));
    log.flush();

    await rs.start();
    await expect.poll(() => rs.received().length, { timeout: 15_000 }).toBe(6);
    await expect.poll(() => log.isFailing(), { timeout: 5_000 }).toBe(false);
    expect(recovered).toEqual([0]);
    const ids = rs.received().map((l) => (JSON.parse(l.split('|').slice(5).join('|')) as { id: string }).id);
    expect(ids).toEqual(['before', 'while-down-0', 'while-down-1', 'while-down-2', 'while-down-3', 'while-down-4']);
    log.close();
  }, 40_000);
});

describe('audit.syslog over TLS', () => {
  it('octet-counted RFC 5424 frames over a verified TLS connection', async () => {
    const pki = testPki();
    const dir = mkdtempSync(join(tmpdir(), 'aigate-syslog-tls-'));
    writeFileSync(join(dir, 'ca.pem'), pki.proxyCa.certPem);
    let data = '';
    const server = createTlsServer({ cert: pki.proxyCert.certPem, key: pki.proxyCert.keyPem }, (s) => s.on('data', (d: Buffer) => (data += d.toString())));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const log = new AuditLog({ file: null, stdout: false, syslog: { url: `tls://localhost:${port}`, facility: 16, ca: join(dir, 'ca.pem') } });
    log.write(record('t1', 'block'));
    log.close();
    await expect.poll(() => data.includes('"chain-end"'), { timeout: 10_000 }).toBe(true);
    // LEN SP MSG, twice (the record, then the chain-end)
    const frames: string[] = [];
    let rest = Buffer.from(data);
    while (rest.length > 0) {
      const sp = rest.indexOf(0x20);
      const len = Number(rest.subarray(0, sp).toString());
      frames.push(rest.subarray(sp + 1, sp + 1 + len).toString());
      rest = rest.subarray(sp + 1 + len);
    }
    expect(frames).toHaveLength(2);
    expect(frames[0]).toMatch(/^<132>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ aigate \d+ audit - \{"time":.*"id":"t1".*"hash":"[0-9a-f]{64}"\}$/);
    server.close();
  });

  it('through the proxy: audit.format ecs + audit.syslog from the config; a blocked request arrives as an ECS alert with PRI warning, and the file holds the same line', async () => {
    let data = '';
    const receiver = createServer((s) => s.on('data', (d: Buffer) => (data += d.toString())));
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const { port } = receiver.address() as { port: number };
    const vendors = await startVendors();
    const p = await startTestProxy(vendors, (raw, dir) => {
      raw['audit'] = { file: join(dir, 'audit.log'), format: 'ecs', syslog: { url: `tcp://127.0.0.1:${port}`, facility: 'local4' } };
    });
    try {
      const res = await request(`${p.gatewayUrl}/openai/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: `my token is ${githubToken()}` }] }),
        dispatcher: p.client,
      });
      await res.body.text();
      expect(res.statusCode).toBe(403);
      // The dashboard's listeners still get aigate's record.
      expect(p.audit.at(-1)).toMatchObject({ decision: 'block' });
    } finally {
      await p.stop();
      await vendors.close();
    }
    await expect.poll(() => data.includes('chain-end'), { timeout: 10_000 }).toBe(true);
    const first = data.slice(data.indexOf(' ') + 1);
    expect(first).toMatch(/^<164>1 /); // local4 (20) × 8 + warning (4)
    const line = readFileSync(join(p.dir, 'audit.log'), 'utf8').split('\n')[0]!;
    expect(first.startsWith(`<164>1 `) && first.includes(` audit - ${line}`)).toBe(true);
    expect(JSON.parse(line)).toMatchObject({ event: { kind: 'alert', outcome: 'failure' }, http: { response: { status_code: 403 } }, aigate: { decision: 'block' } });
    receiver.close();
  });

  it('config: url and facility are checked', () => {
    const ok = configSchema.parse({ audit: { syslog: { url: 'tls://siem.example:6514' } } }).audit.syslog;
    expect(ok).toEqual({ url: 'tls://siem.example:6514', facility: 'local0' });
    const bad = configSchema.safeParse({ audit: { syslog: { url: 'http://x:1', facility: 'local9' } } });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues.map((i) => i.message))).toMatch(/tcp:\/\/host:port.*syslog facility name/);
  });
});

