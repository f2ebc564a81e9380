// Starts bench/lib/bare-proxy.mjs (the reference contender) in front of the nginx fake upstream.
import { OPENAI } from './pki.mjs';
import { startChild, waitForTls } from './proc.mjs';

/** mode: h1 (node:https), h2 (node:http2 compatibility API) or h2stream (node:http2 stream API). */
export async function startBareProxy(pki, { port, upstreamPort, mode = 'h1' }) {
  const entry = startChild(
    process.execPath,
    ['bench/lib/bare-proxy.mjs', String(port), pki.files.frontCert, pki.files.frontKey, String(upstreamPort), pki.files.vendorCa, OPENAI, mode],
    { name: `bare node proxy (${mode})` },
  );
  await waitForTls(port, { entry });
  return entry;
}
