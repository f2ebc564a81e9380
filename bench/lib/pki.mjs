// Certificates of a bench run, generated fresh into its temp dir with aigate's own CA code:
// - the fake vendors' CA and per-SNI certificates (what both proxies must verify upstream);
// - aigate's CA (forward-mode interception) and the front certificate served by BOTH proxies
//   (same key type and size, so the TLS cost of the front door is the same for each contender).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCA, issueServerCert } from '../../dist/tls/ca.js';

export const OPENAI = 'api.openai.com';
export const ANTHROPIC = 'api.anthropic.com';

export function makePki(dir) {
  const vendorCa = createCA({ commonName: 'aigate bench vendor CA' });
  const openai = issueServerCert(vendorCa, [OPENAI]);
  const anthropic = issueServerCert(vendorCa, [ANTHROPIC]);
  // Served when a client sends no or another SNI name (wrk "direct" connects to 127.0.0.1).
  const fallback = issueServerCert(vendorCa, ['localhost', '127.0.0.1']);
  const proxyCa = createCA({ commonName: 'aigate bench proxy CA' });
  const front = issueServerCert(proxyCa, ['localhost', '127.0.0.1']);

  const put = (name, pem, mode = 0o644) => {
    const path = join(dir, name);
    writeFileSync(path, pem, { mode });
    return path;
  };
  return {
    vendorCaPem: vendorCa.certPem,
    proxyCaPem: proxyCa.certPem,
    openai: { cert: openai.certPem, key: openai.keyPem },
    anthropic: { cert: anthropic.certPem, key: anthropic.keyPem },
    files: {
      vendorCa: put('vendor-ca.crt', vendorCa.certPem),
      openaiCert: put('openai.crt', openai.certPem),
      openaiKey: put('openai.key', openai.keyPem, 0o600),
      anthropicCert: put('anthropic.crt', anthropic.certPem),
      anthropicKey: put('anthropic.key', anthropic.keyPem, 0o600),
      fallbackCert: put('fallback.crt', fallback.certPem),
      fallbackKey: put('fallback.key', fallback.keyPem, 0o600),
      proxyCa: put('ca.crt', proxyCa.certPem),
      proxyCaKey: put('ca.key', proxyCa.keyPem, 0o600),
      frontCert: put('proxy.crt', front.certPem),
      frontKey: put('proxy.key', front.keyPem, 0o600),
    },
  };
}
