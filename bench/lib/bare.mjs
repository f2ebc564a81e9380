// Starts bench/lib/bare-proxy.mjs (the reference contender) in front of the nginx fake upstream.
import { OPENAI } from './pki.mjs';
import { startChild, waitForTls } from './proc.mjs';

export async function startBareProxy(pki, { port, upstreamPort }) {
  const entry = startChild(
    process.execPath,
    ['bench/lib/bare-proxy.mjs', String(port), pki.files.frontCert, pki.files.frontKey, String(upstreamPort), pki.files.vendorCa, OPENAI],
    { name: 'bare node proxy' },
  );
  await waitForTls(port, { entry });
  return entry;
}
