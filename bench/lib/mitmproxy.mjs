// mitmproxy (Debian's `mitmproxy` package, mitmdump) as a contender for S1 and S2: the usual
// Python TLS-inspecting proxy, in reverse mode in front of the same nginx fake upstream, serving
// the bench's front certificate to clients and not verifying the upstream's (ssl_insecure: the
// fake vendor CA is not in its store, and aigate's upstream check is not what is compared).
// Absent mitmdump, the bench says so once and leaves it out.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startChild, waitForTls, which } from './proc.mjs';

/** mitmdump on 127.0.0.1:`port` in front of the upstream on `upstreamPort`; null when it is not installed. */
export async function startMitmproxy(dir, pki, { port, upstreamPort }) {
  if (!which('mitmdump')) return null;
  // --certs takes one PEM file with the key and the certificate.
  const pem = join(dir, 'mitmproxy-front.pem');
  writeFileSync(pem, `${readFileSync(pki.files.frontKey, 'utf8')}\n${readFileSync(pki.files.frontCert, 'utf8')}`, { mode: 0o600 });
  const confdir = join(dir, 'mitmproxy');
  mkdirSync(confdir, { recursive: true });
  const entry = startChild(
    'mitmdump',
    [
      '--mode', `reverse:https://127.0.0.1:${upstreamPort}`,
      '--listen-host', '127.0.0.1',
      '--listen-port', String(port),
      '--certs', `*=${pem}`,
      '--set', 'ssl_insecure=true',
      '--set', `confdir=${confdir}`,
      '--set', 'flow_detail=0',
      '--set', 'termlog_verbosity=error',
    ],
    { name: 'mitmproxy' },
  );
  // Python start-up and its CA generation in confdir take a few seconds on a busy host.
  await waitForTls(port, { entry, timeoutMs: 60_000 });
  return entry;
}
