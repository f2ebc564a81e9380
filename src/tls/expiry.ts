// aigate_certificate_expiry_timestamp_seconds: when each configured certificate stops being valid,
// so an alert fires weeks before a gateway certificate, the interception CA or a pinned upstream CA
// expires (an expired interception CA breaks every IDE at once).
import { X509Certificate } from 'node:crypto';
import type { Gauge } from 'prom-client';
import { readConfiguredFile } from '../config/load.js';
import type { Config } from '../config/schema.js';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The earliest notAfter (Unix seconds) of the certificates in a PEM file, or null when it has none. */
export function earliestExpiry(pem: string): number | null {
  let earliest: number | null = null;
  for (const block of pem.match(PEM_CERT) ?? []) {
    try {
      const t = Date.parse(new X509Certificate(block).validTo) / 1000;
      if (earliest === null || t < earliest) earliest = t;
    } catch {
      // Not a certificate aigate could use either: loading it reported that already.
    }
  }
  return earliest;
}

/** Sets the gauge for each certificate file the config uses (the listeners it enables). */
export function recordCertificateExpiry(gauge: Gauge<'certificate'>, config: Config, configFile: string): void {
  const files: Array<[string, string]> = [];
  if (config.listen.gateway) files.push(['tls.cert', config.tls.cert]);
  if (config.listen.forward) files.push(['tls.ca.cert', config.tls.ca.cert]);
  config.upstreamTls.ca.forEach((file, i) => files.push([`upstreamTls.ca[${i}]`, file]));
  for (const [key, file] of files) {
    const t = earliestExpiry(readConfiguredFile(configFile, key, file).toString('utf8'));
    if (t !== null) gauge.set({ certificate: key }, t);
  }
}
